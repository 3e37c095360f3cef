using System.Text.Json;
using ZCode.Data;

namespace ZCode.Tests.Data;

public class BatcherTests
{
    private const int Pad = 0, Bos = 2, Eos = 3;

    /// <summary>Synthetic direction: example i has a source of 3 + (i*7 % maxExtra) ids and a different target length.</summary>
    private sealed class FakeSet : IExampleSet
    {
        private readonly int _tag;
        private readonly int _maxExtra;

        public FakeSet(string name, int count, int tag, int maxExtra = 60)
        {
            Name = name;
            Count = count;
            _tag = tag;
            _maxExtra = maxExtra;
        }

        public string Name { get; }
        public string Task => "mt";
        public string SrcLang => Name.Split('-')[0];
        public string TgtLang => Name.Split('-')[1];
        public int Count { get; }

        public Example Get(int index)
        {
            var src = new int[SourceLength(index)];
            src[0] = _tag;
            for (var j = 1; j < src.Length - 1; j++) src[j] = 100 + (index + j) % 900;
            src[^1] = Eos;
            var tgt = new int[TargetLength(index)];
            for (var j = 0; j < tgt.Length - 1; j++) tgt[j] = 1000 + (index * 3 + j) % 900;
            tgt[^1] = Eos;
            // The example's index, for tests that track coverage.
            src[1] = 10_000 + index;
            return new Example(src, tgt, SrcLang, TgtLang, Task);
        }

        public int SourceLength(int index) => 3 + index * 7 % _maxExtra;
        public int TargetLength(int index) => 2 + index * 13 % _maxExtra;
    }

    private static IReadOnlyList<IExampleSet> Sets() => new IExampleSet[]
    {
        new FakeSet("eng_Latn-deu_Latn", 5000, 20),
        new FakeSet("deu_Latn-eng_Latn", 5000, 21),
        new FakeSet("eng_Latn-swh_Latn", 300, 22),
        new FakeSet("swh_Latn-eng_Latn", 40, 23),
    };

    private static string Fingerprint(Batch b)
        => $"{b.Size}x{b.SrcLen}x{b.TgtLen}:{string.Join(',', b.SrcTokens)}|{string.Join(',', b.TgtOut)}";

    [Test]
    public void CollatePadsAndShiftsTheDecoderInput()
    {
        var a = new Example(new[] { 20, 5, 6, 7, Eos }, new[] { 8, 9, Eos }, "x", "y", "mt");
        var b = new Example(new[] { 20, 5, Eos }, new[] { 8, 9, 10, 11, Eos }, "x", "y", "mt");
        var batch = Batch.Collate(new[] { a, b }, Pad, Bos);
        Assert.That((batch.Size, batch.SrcLen, batch.TgtLen), Is.EqualTo((2, 5, 5)));
        Assert.That(batch.SrcTokens, Is.EqualTo(new long[] { 20, 5, 6, 7, Eos, 20, 5, Eos, Pad, Pad }));
        Assert.That(batch.TgtIn, Is.EqualTo(new long[] { Bos, 8, 9, Pad, Pad, Bos, 8, 9, 10, 11 }));
        Assert.That(batch.TgtOut, Is.EqualTo(new long[] { 8, 9, Eos, Pad, Pad, 8, 9, 10, 11, Eos }));
        Assert.That(batch.SrcTokenCount, Is.EqualTo(8));
        Assert.That(batch.TgtTokenCount, Is.EqualTo(8));
        Assert.That(batch.PaddedTokens, Is.EqualTo(10));
        Assert.That(batch.Examples, Is.EqualTo(new[] { a, b }));

        var (src, tgtIn, tgtOut) = batch.ToTensors();
        using (src) using (tgtIn) using (tgtOut)
        {
            Assert.That(src.shape, Is.EqualTo(new long[] { 2, 5 }));
            Assert.That(tgtIn.shape, Is.EqualTo(new long[] { 2, 5 }));
            Assert.That(src.dtype, Is.EqualTo(TorchSharp.torch.ScalarType.Int64));
            Assert.That(tgtOut[1, 4].item<long>(), Is.EqualTo(Eos));
            Assert.That(src[1, 3].item<long>(), Is.EqualTo(Pad));
        }
    }

    [Test]
    public void CollateWithNonZeroPad()
    {
        var a = new Example(new[] { 20, Eos }, new[] { 8, 9, Eos }, "x", "y", "mt");
        var b = new Example(new[] { 20, 5, Eos }, new[] { Eos }, "x", "y", "mt");
        var batch = Batch.Collate(new[] { a, b }, padId: 1, bosId: Bos);
        Assert.That(batch.SrcTokens, Is.EqualTo(new long[] { 20, Eos, 1, 20, 5, Eos }));
        Assert.That(batch.TgtIn, Is.EqualTo(new long[] { Bos, 8, 9, Bos, 1, 1 }));
        Assert.That(batch.TgtOut, Is.EqualTo(new long[] { 8, 9, Eos, Eos, 1, 1 }));
    }

    [Test]
    public void CutByBudgetRespectsTheBudget()
    {
        var lengths = new[] { 1, 2, 2, 3, 5, 5, 5, 9, 10, 40 };
        var ranges = TokenBudgetBatcher.CutByBudget(lengths, 12);
        Assert.That(ranges.Select(r => lengths[r]), Is.EqualTo(new[]
        {
            new[] { 1, 2, 2, 3 }, new[] { 5, 5 }, new[] { 5 }, new[] { 9 }, new[] { 10 }, new[] { 40 },
        }));
    }

    [Test]
    public void BatchesRespectTheTokenBudgetAndPadding()
    {
        const int budget = 1024;
        var batcher = new TokenBudgetBatcher(Sets(), 5.0, budget, Pad, Bos, seed: 1, poolBatches: 20);
        long padded = 0, real = 0;
        for (var i = 0; i < 300; i++)
        {
            var b = batcher.Next();
            Assert.That(b.Size * Math.Max(b.SrcLen, b.TgtLen), Is.LessThanOrEqualTo(budget));
            for (var r = 0; r < b.Size; r++)
            {
                var e = b.Examples[r];
                Assert.That(b.SrcTokens.Skip(r * b.SrcLen).Take(b.SrcLen), Is.EqualTo(e.Source.Select(x => (long)x)
                    .Concat(Enumerable.Repeat((long)Pad, b.SrcLen - e.Source.Length))));
                Assert.That(b.TgtOut.Skip(r * b.TgtLen).Take(b.TgtLen), Is.EqualTo(e.Target.Select(x => (long)x)
                    .Concat(Enumerable.Repeat((long)Pad, b.TgtLen - e.Target.Length))));
                Assert.That(b.TgtIn[r * b.TgtLen], Is.EqualTo(Bos));
            }
            padded += b.PaddedTokens;
            real += b.Examples.Sum(e => e.Length);
        }
        // Length bucketing keeps padding low; batches are reasonably full.
        Assert.That((double)real / padded, Is.GreaterThan(0.9));
        Assert.That((double)padded / 300, Is.GreaterThan(0.85 * budget));
    }

    [Test]
    public void DirectionFrequenciesFollowTheTemperature()
    {
        var sets = Sets();
        var batcher = new TokenBudgetBatcher(sets, 5.0, 2048, Pad, Bos, seed: 3, poolBatches: 50);
        var counts = new Dictionary<string, int>();
        var total = 0;
        while (total < 100_000)
        {
            foreach (var e in batcher.Next().Examples)
            {
                var name = $"{e.SrcLang}-{e.TgtLang}";
                counts[name] = counts.GetValueOrDefault(name) + 1;
                total++;
            }
        }
        for (var i = 0; i < sets.Count; i++)
            Assert.That((double)counts[sets[i].Name] / total, Is.EqualTo(batcher.Probabilities[i]).Within(0.01), sets[i].Name);
    }

    [Test]
    public void EveryExampleOncePerEpoch()
    {
        var set = new FakeSet("eng_Latn-deu_Latn", 997, 20);
        var batcher = new TokenBudgetBatcher(new[] { set }, 1.0, 512, Pad, Bos, seed: 5, poolBatches: 3);
        var seen = new Dictionary<int, int>();
        long n = 0;
        // Consume whole pools so that drawn == returned.
        while (n < 3 * 997 || batcher.State.PoolPosition != 0)
        {
            foreach (var e in batcher.Next().Examples)
            {
                seen[e.Source[1] - 10_000] = seen.GetValueOrDefault(e.Source[1] - 10_000) + 1;
                n++;
            }
        }
        var lo = (int)(n / 997);
        Assert.That(seen.Count, Is.EqualTo(997));
        Assert.That(seen.Values, Has.All.InRange(lo, lo + 1));
    }

    [Test]
    public void SameSeedSameBatchesDifferentSeedDifferentBatches()
    {
        var a = new TokenBudgetBatcher(Sets(), 5.0, 1024, Pad, Bos, seed: 42, poolBatches: 10);
        var b = new TokenBudgetBatcher(Sets(), 5.0, 1024, Pad, Bos, seed: 42, poolBatches: 10);
        var c = new TokenBudgetBatcher(Sets(), 5.0, 1024, Pad, Bos, seed: 43, poolBatches: 10);
        var fa = Enumerable.Range(0, 60).Select(_ => Fingerprint(a.Next())).ToArray();
        Assert.That(Enumerable.Range(0, 60).Select(_ => Fingerprint(b.Next())), Is.EqualTo(fa));
        Assert.That(Enumerable.Range(0, 60).Select(_ => Fingerprint(c.Next())), Is.Not.EqualTo(fa));
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(7)]
    [TestCase(10)]
    [TestCase(33)]
    [TestCase(250)]
    public void RestoredStateContinuesIdentically(int consumed)
    {
        var original = new TokenBudgetBatcher(Sets(), 5.0, 1024, Pad, Bos, seed: 9, poolBatches: 10);
        for (var i = 0; i < consumed; i++) original.Next();
        var json = JsonSerializer.Serialize(original.State);
        var expected = Enumerable.Range(0, 40).Select(_ => Fingerprint(original.Next())).ToArray();

        var resumed = new TokenBudgetBatcher(Sets(), 5.0, 1024, Pad, Bos, seed: 9, poolBatches: 10)
        {
            State = JsonSerializer.Deserialize<SamplerState>(json)!,
        };
        Assert.That(resumed.BatchesProduced, Is.EqualTo(consumed));
        Assert.That(Enumerable.Range(0, 40).Select(_ => Fingerprint(resumed.Next())), Is.EqualTo(expected));
    }

    [Test]
    public void StateFromOtherDataOrSeedIsRejected()
    {
        var a = new TokenBudgetBatcher(Sets(), 5.0, 1024, Pad, Bos, seed: 9);
        a.Next();
        var state = a.State;
        var otherSeed = new TokenBudgetBatcher(Sets(), 5.0, 1024, Pad, Bos, seed: 10);
        Assert.That(Assert.Throws<UserInputException>(() => otherSeed.State = state)!.Message, Does.Contain("train.seed"));
        var otherSets = new TokenBudgetBatcher(Sets().Take(3).ToArray(), 5.0, 1024, Pad, Bos, seed: 9);
        Assert.That(Assert.Throws<UserInputException>(() => otherSets.State = state)!.Message, Does.Contain("directions"));
    }

    [Test]
    public void SequentialBatchesCoverEveryExampleOnce()
    {
        var set = new FakeSet("eng_Latn-deu_Latn", 500, 20);
        var batches = TokenBudgetBatcher.Sequential(set, 700, Pad, Bos);
        var ids = batches.SelectMany(b => b.Examples).Select(e => e.Source[1] - 10_000).ToArray();
        Assert.That(ids, Is.EquivalentTo(Enumerable.Range(0, 500)));
        Assert.That(batches, Has.All.Matches<Batch>(b => b.PaddedTokens <= 700));
        Assert.That(TokenBudgetBatcher.Sequential(set, 700, Pad, Bos).Select(Fingerprint), Is.EqualTo(batches.Select(Fingerprint)));
    }

    [Test]
    public void BatchesEnumerableIsEndless()
    {
        var set = new FakeSet("eng_Latn-deu_Latn", 3, 20);
        var batcher = new TokenBudgetBatcher(new[] { set }, 1.0, 64, Pad, Bos, seed: 1, poolBatches: 1);
        Assert.That(batcher.Batches().Take(100).Count(), Is.EqualTo(100));
    }
}
