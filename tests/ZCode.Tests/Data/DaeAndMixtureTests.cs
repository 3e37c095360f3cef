using ZCode.Config;
using ZCode.Data;
using ZCode.Text;

namespace ZCode.Tests.Data;

/// <summary>DAE noise (mBART text infilling), the task+language mixture and the shard-backed data source.</summary>
public class DaeAndMixtureTests
{
    private const int Mask = 56;

    [Test]
    public void MaskedFractionSpanLengthsAndTargetsMatchTheRecipe()
    {
        var noise = new DaeNoise(0.35, 3.5, Mask);
        var rng = new DeterministicRandom(7);
        long tokens = 0, masked = 0, spanCount = 0, spanTotal = 0;
        for (var s = 0; s < 20_000; s++)
        {
            var n = 10 + rng.NextInt(60);
            var x = Enumerable.Range(100, n).ToArray();
            var y = noise.Apply(x, rng, out var spans);
            tokens += n;
            masked += spans.Sum();
            spanCount += spans.Count;
            spanTotal += spans.Sum();
            Assert.That(y.Count(t => t == Mask), Is.EqualTo(spans.Count));
            Assert.That(y.Length, Is.EqualTo(n - spans.Sum() + spans.Count));
            // Unmasked tokens keep their order, and no two masks are adjacent (spans are separated).
            Assert.That(y.Where(t => t != Mask), Is.Ordered.Ascending);
            for (var i = 1; i < y.Length; i++) Assert.That(y[i] == Mask && y[i - 1] == Mask, Is.False);
        }
        Assert.That((double)masked / tokens, Is.EqualTo(0.35).Within(0.02));
        Assert.That((double)spanTotal / spanCount, Is.EqualTo(3.5).Within(0.4), "mean span length ~ Poisson(3.5)");
    }

    [Test]
    public void SentencePermutationKeepsTheTokens()
    {
        var ends = new bool[10];
        ends[9] = true;
        var noise = new DaeNoise(0.0, 3.5, Mask, permuteSentences: true, sentenceEnd: ends);
        int[] x = [1, 2, 9, 3, 4, 9, 5, 9];
        var seen = new HashSet<string>();
        for (var s = 0; s < 50; s++)
        {
            var y = noise.Apply(x, new DeterministicRandom(s));
            Assert.That(y.OrderBy(t => t), Is.EqualTo(x.OrderBy(t => t)));
            seen.Add(string.Join(',', y));
        }
        Assert.That(seen.Count, Is.GreaterThan(1));
    }

    private sealed class FakeSet(string task, string lang, int count) : IExampleSet
    {
        public string Name => $"{task}:{lang}";
        public string Task => task;
        public string SrcLang => lang;
        public string TgtLang => lang;
        public int Count => count;
        public Example Get(int index) => new([1, 3], [4, 3], lang, lang, task);
        public int SourceLength(int index) => 2;
        public int TargetLength(int index) => 2;
    }

    [TestCase(1.0)]
    [TestCase(5.0)]
    [TestCase(1000.0)]
    public void TaskAndLanguageDrawsMatchWeightsTimesTemperature(double t)
    {
        var sets = new IExampleSet[]
        {
            new FakeSet("mt", "de", 90_000), new FakeSet("mt", "fr", 9_000), new FakeSet("mt", "sw", 1_000),
            new FakeSet("dae", "de", 5_000), new FakeSet("dae", "sw", 50),
        };
        var weights = new Dictionary<string, double> { ["mt"] = 3, ["dae"] = 1 };
        var p = TaskMixture.Probabilities(sets, weights, t);
        double[] Within(long[] n) => TemperatureSampler.ComputeProbabilities(n, t);
        var mt = Within([90_000, 9_000, 1_000]);
        var dae = Within([5_000, 50]);
        var expected = new[] { 0.75 * mt[0], 0.75 * mt[1], 0.75 * mt[2], 0.25 * dae[0], 0.25 * dae[1] };
        Assert.That(p, Is.EqualTo(expected).Within(1e-12));
        if (t == 1.0) Assert.That(mt[0], Is.EqualTo(0.9).Within(1e-12), "T=1: proportional");
        if (t == 1000.0) Assert.That(mt[0], Is.EqualTo(1 / 3.0).Within(0.01), "large T: uniform within the task");

        var sampler = new TemperatureSampler(p);
        var rng = new DeterministicRandom(3);
        var hits = new int[sets.Length];
        const int draws = 100_000;
        for (var i = 0; i < draws; i++) hits[sampler.Sample(rng)]++;
        for (var i = 0; i < sets.Length; i++)
            Assert.That((double)hits[i] / draws, Is.EqualTo(expected[i]).Within(0.01), sets[i].Name);
    }

    [Test]
    public void ShardDataSourceMixesMtAndDaeAndRestoresExactly()
    {
        var cfg = ConfigLoader.LoadDefault(["tasks.dae.weight=1.0", "data.shard_dir=" + Path.Combine(Path.GetTempPath(), "zcode-test-shards-" + Guid.NewGuid().ToString("N"))]);
        try
        {
            var data = DataSource.FromShards(cfg);
            Assert.That(data.TrainSets.Select(s => s.Task).Distinct(), Is.EquivalentTo(new[] { Tasks.Mt, Tasks.Dae }));
            var tok = data.Tokenizer;
            var daeId = tok.TokenToId(Languages.DaeTag);
            var maskId = tok.TokenToId(Languages.MaskToken);
            var batches = Enumerable.Range(0, 40).Select(_ => data.Next()).ToList();
            var examples = batches.SelectMany(b => b.Examples).ToList();
            var dae = examples.Where(e => e.Task == Tasks.Dae).ToList();
            Assert.That(dae, Is.Not.Empty);
            Assert.That(examples.Count(e => e.Task == Tasks.Mt), Is.GreaterThan(0));
            foreach (var e in dae)
            {
                Assert.That(e.Source[0], Is.EqualTo(daeId));
                Assert.That(e.Source[1], Is.EqualTo(tok.LanguageTagId(e.SrcLang)));
                Assert.That(e.Target[^1], Is.EqualTo(tok.EosId));
                Assert.That(e.Source.Contains(maskId) || e.Target.Length < 4, Is.True);
            }

            // Restore mid-stream: a fresh source continues with identical batches, DAE noise included.
            var data2 = DataSource.FromShards(cfg);
            for (var i = 0; i < 7; i++) data2.Next();
            var state = data2.Train.State;
            var data3 = DataSource.FromShards(cfg);
            data3.Train.State = state;
            for (var i = 7; i < 40; i++)
                Assert.That(data3.Next().SrcTokens, Is.EqualTo(batches[i].SrcTokens), $"batch {i}");
        }
        finally
        {
            var dir = cfg.ResolvePath(cfg.Data.ShardDir);
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }
}

/// <summary>Background batch building gives the same stream and an exact state.</summary>
public class PrefetchingBatchStreamTests
{
    [Test]
    public void SameBatchesAsTheInnerStreamAndExactStateRestore()
    {
        var cfg = ZCode.Config.ConfigLoader.LoadDefault(["tasks.dae.weight=0.5", "train.tokens_per_batch=512"]);
        var reference = DataSource.FromShards(cfg).Train;
        var expected = Enumerable.Range(0, 30).Select(_ => reference.Next().SrcTokens).ToList();

        using var prefetch = new PrefetchingBatchStream(DataSource.FromShards(cfg).Train, capacity: 3);
        for (var i = 0; i < 10; i++) Assert.That(prefetch.Next().SrcTokens, Is.EqualTo(expected[i]), $"batch {i}");
        var state = prefetch.State;
        Assert.That(state.BatchesProduced, Is.EqualTo(10), "state after the batches handed out, not those read ahead");

        using var restored = new PrefetchingBatchStream(DataSource.FromShards(cfg).Train, capacity: 3);
        restored.Next();
        restored.State = state;
        for (var i = 10; i < 30; i++) Assert.That(restored.Next().SrcTokens, Is.EqualTo(expected[i]), $"batch {i}");
    }
}
