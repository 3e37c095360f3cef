using ZCode.Data;

namespace ZCode.Tests.Data;

public class TemperatureSamplerTests
{
    private static readonly long[] Counts = { 100_000, 20_000, 5_000, 1_000, 50 };

    private static double[] Expected(long[] n, double t)
    {
        var w = n.Select(x => Math.Pow(x, 1 / t)).ToArray();
        return w.Select(x => x / w.Sum()).ToArray();
    }

    private static double[] Empirical(TemperatureSampler sampler, int draws, long seed)
    {
        var rng = new DeterministicRandom(seed);
        var hist = new double[sampler.Probabilities.Count];
        for (var i = 0; i < draws; i++) hist[sampler.Sample(rng)]++;
        return hist.Select(h => h / draws).ToArray();
    }

    [TestCase(1.0)]
    [TestCase(2.0)]
    [TestCase(5.0)]
    [TestCase(100.0)]
    public void ProbabilitiesAreNToTheOneOverT(double t)
    {
        var sampler = new TemperatureSampler(Counts, t);
        Assert.That(sampler.Probabilities, Is.EqualTo(Expected(Counts, t)).Within(1e-12));
        Assert.That(sampler.Probabilities.Sum(), Is.EqualTo(1.0).Within(1e-12));
    }

    [TestCase(1.0)]
    [TestCase(5.0)]
    [TestCase(1000.0)]
    public void SampleFrequenciesMatchWithinOnePercent(double t)
    {
        var sampler = new TemperatureSampler(Counts, t);
        var freq = Empirical(sampler, 100_000, seed: 11);
        var expected = Expected(Counts, t);
        for (var i = 0; i < Counts.Length; i++)
            Assert.That(freq[i], Is.EqualTo(expected[i]).Within(0.01), $"T={t}, i={i}");
    }

    [Test]
    public void TemperatureOneIsProportional()
    {
        var p = new TemperatureSampler(Counts, 1.0).Probabilities;
        var total = (double)Counts.Sum();
        Assert.That(p, Is.EqualTo(Counts.Select(c => c / total)).Within(1e-12));
    }

    [Test]
    public void LargeTemperatureIsNearlyUniform()
    {
        var p = new TemperatureSampler(Counts, 1e6).Probabilities;
        Assert.That(p, Has.All.EqualTo(0.2).Within(1e-4));
        var freq = Empirical(new TemperatureSampler(Counts, 1e6), 100_000, seed: 2);
        Assert.That(freq, Has.All.EqualTo(0.2).Within(0.01));
    }

    [Test]
    public void ZeroCountsAreNeverSampled()
    {
        var sampler = new TemperatureSampler(new long[] { 0, 10, 0, 10, 0 }, 5);
        var freq = Empirical(sampler, 20_000, seed: 4);
        Assert.That(freq[0] + freq[2] + freq[4], Is.Zero);
        Assert.That(freq[1], Is.EqualTo(0.5).Within(0.02));
    }

    [Test]
    public void SameSeedSameDraws()
    {
        var sampler = new TemperatureSampler(Counts, 5);
        var a = new DeterministicRandom(8);
        var b = new DeterministicRandom(8);
        Assert.That(Enumerable.Range(0, 1000).Select(_ => sampler.Sample(a)),
            Is.EqualTo(Enumerable.Range(0, 1000).Select(_ => sampler.Sample(b))));
    }

    [Test]
    public void InvalidArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TemperatureSampler(Counts, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TemperatureSampler(Counts, double.NaN));
        Assert.Throws<ArgumentException>(() => new TemperatureSampler(new long[] { 0, 0 }, 1));
        Assert.Throws<ArgumentException>(() => new TemperatureSampler(new long[] { 1, -1 }, 1));
        Assert.Throws<ArgumentException>(() => new TemperatureSampler(Array.Empty<long>(), 1));
    }
}
