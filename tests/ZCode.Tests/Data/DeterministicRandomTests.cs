using ZCode.Data;

namespace ZCode.Tests.Data;

public class DeterministicRandomTests
{
    [Test]
    public void SeedingIsSplitMix64()
    {
        // Reference SplitMix64 outputs for seed 1234567 (Vigna's splitmix64.c).
        var s = new DeterministicRandom(1234567).State;
        Assert.That((ulong)s[0], Is.EqualTo(6457827717110365317UL));
        Assert.That((ulong)s[1], Is.EqualTo(3203168211198807973UL));
    }

    [Test]
    public void MatchesXoshiro256StarStarReference()
    {
        // Outputs of the reference xoshiro256starstar.c from state {1, 2, 3, 4}.
        var r = new DeterministicRandom(0) { State = new long[] { 1, 2, 3, 4 } };
        var expected = new[] { 11520UL, 0UL, 1509978240UL, 1215971899390074240UL, 1216172134540287360UL, 607988272756665600UL };
        foreach (var e in expected) Assert.That(r.NextUInt64(), Is.EqualTo(e));
    }

    [Test]
    public void StateRestoresTheStream()
    {
        var a = new DeterministicRandom(7);
        for (var i = 0; i < 10; i++) a.NextUInt64();
        var saved = a.State;
        var next = Enumerable.Range(0, 5).Select(_ => a.NextUInt64()).ToArray();
        var b = new DeterministicRandom(12345) { State = saved };
        Assert.That(Enumerable.Range(0, 5).Select(_ => b.NextUInt64()), Is.EqualTo(next));
        Assert.Throws<ArgumentException>(() => b.State = new long[4]);
        Assert.Throws<ArgumentException>(() => b.State = new long[3]);
    }

    [Test]
    public void SameSeedSameStreamDifferentSeedDifferentStream()
    {
        var a = new DeterministicRandom(99);
        var b = new DeterministicRandom(99);
        var c = new DeterministicRandom(100);
        var xa = Enumerable.Range(0, 8).Select(_ => a.NextUInt64()).ToArray();
        Assert.That(Enumerable.Range(0, 8).Select(_ => b.NextUInt64()), Is.EqualTo(xa));
        Assert.That(Enumerable.Range(0, 8).Select(_ => c.NextUInt64()), Is.Not.EqualTo(xa));
        Assert.That(DeterministicRandom.DeriveSeed(1, 2, 3), Is.EqualTo(DeterministicRandom.DeriveSeed(1, 2, 3)));
        Assert.That(DeterministicRandom.DeriveSeed(1, 2, 3), Is.Not.EqualTo(DeterministicRandom.DeriveSeed(1, 3, 2)));
    }

    [Test]
    public void BoundedIntsAndDoublesAreInRangeAndRoughlyUniform()
    {
        var r = new DeterministicRandom(3);
        var counts = new int[7];
        for (var i = 0; i < 70_000; i++) counts[r.NextInt(7)]++;
        Assert.That(counts, Has.All.InRange(9_500, 10_500));
        for (var i = 0; i < 10_000; i++) Assert.That(r.NextDouble(), Is.InRange(0.0, 1.0).And.LessThan(1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.NextInt(0));
    }

    [Test]
    public void ShuffleIsAPermutation()
    {
        var r = new DeterministicRandom(5);
        var items = Enumerable.Range(0, 100).ToArray();
        r.Shuffle(items.AsSpan());
        Assert.That(items, Is.EquivalentTo(Enumerable.Range(0, 100)));
        Assert.That(items, Is.Not.EqualTo(Enumerable.Range(0, 100)));
    }
}
