using TorchSharp;
using TorchSharp.Modules;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Tests.Parallel;

/// <summary>Element-wise ZeRO partition arithmetic and bucketed collectives over it (in-process ranks).</summary>
public class FlatPartitionTests
{
    private static List<(string, Parameter, bool, int)> Params(int seed)
    {
        manual_seed(seed);
        return
        [
            ("emb", new Parameter(randn(7, 5)), true, -1),
            ("norm", new Parameter(randn(5)), false, -1),
            ("w", new Parameter(randn(3, 4)), true, -1),
            ("b", new Parameter(randn(3)), false, -1),
        ];
    }

    [Test]
    public void SlicesAreEqualContiguousAndDecayedFirst()
    {
        var p = FlatPartition.Build(Params(1), ranks: 4, rank: 3, bucketElements: 8);
        Assert.That(p.Numel, Is.EqualTo(35 + 5 + 12 + 3));
        Assert.That(p.ShardSize, Is.EqualTo(14)); // ceil(55 / 4)
        Assert.That(p.ShardStart, Is.EqualTo(42));
        Assert.That(p.Slots.Select(s => s.Name), Is.EqualTo(new[] { "emb", "w", "norm", "b" }));
        Assert.That(p.DecayEnd, Is.EqualTo(47));
        Assert.That(p.DecayedInShard, Is.EqualTo(5));
        Assert.That(p.Chunk, Is.EqualTo(2)); // 8 elements per bucket over 4 ranks
        Assert.That(p.Buckets, Is.EqualTo(7));
        var pieces = new List<(string, long, long, long)>();
        p.ForEachPiece(33, 10, (s, inSlot, inRange, n) => pieces.Add((s.Name, inSlot, inRange, n)));
        Assert.That(pieces, Is.EqualTo(new[] { ("emb", 33L, 0L, 2L), ("w", 0L, 2L, 8L) }));
    }

    [Test]
    public void ParamsRoundTripThroughTheFlatVector()
    {
        var list = Params(2);
        var p = FlatPartition.Build(list, 1, 0, 100);
        var flat = zeros(p.Numel);
        p.GatherParams(0, flat);
        var expected = cat(list.Where(x => x.Item3).Concat(list.Where(x => !x.Item3)).Select(x => x.Item2.detach().view(-1)).ToArray());
        Assert.That(flat.allclose(expected, 0, 0), Is.True);
        p.ScatterParams(0, flat * 2);
        Assert.That(list[0].Item2.detach().allclose(expected.narrow(0, 0, 35).view(7, 5) * 2, 0, 0), Is.True);
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void BucketedReductionSumsGradientsOverRanks(int stage)
    {
        const int ranks = 3;
        var grads = new Tensor[ranks][];
        for (int r = 0; r < ranks; r++) { manual_seed(100 + r); grads[r] = Params(0).Select(x => randn(x.Item2.shape)).ToArray(); }
        var sums = Enumerable.Range(0, 4).Select(i => grads.Select(g => g[i]).Aggregate((a, b) => a + b)).ToArray();
        var sumFlat = cat(new[] { 0, 2, 1, 3 }.Select(i => sums[i].view(-1)).ToArray()); // decayed (emb, w) first

        InProcessGroup.Run(ranks, comm =>
        {
            var list = Params(1);
            for (int i = 0; i < list.Count; i++) list[i].Item2.grad = grads[comm.Rank][i].clone();
            var part = FlatPartition.Build(list, ranks, comm.Rank, bucketElements: 7); // chunk 2: several buckets
            using var reducer = new GradientReducer(part, comm, CPU);
            if (stage == 0)
            {
                reducer.AllReduceGradients();
                for (int i = 0; i < list.Count; i++)
                    Assert.That(list[i].Item2.grad!.allclose(sums[i], 1e-5, 1e-6), Is.True, list[i].Item1);
                return;
            }
            var shard = zeros(part.ShardSize);
            reducer.ReduceToShard(shard, reduceScatter: stage == 2);
            long n = Math.Min(part.ShardSize, part.Numel - part.ShardStart);
            Assert.That(shard.narrow(0, 0, n).allclose(sumFlat.narrow(0, part.ShardStart, n), 1e-5, 1e-6), Is.True);

            // All-gather: every rank's slice (here: rank + 1 everywhere) lands in every rank's parameters.
            reducer.AllGatherParameters(full(part.ShardSize, comm.Rank + 1.0f));
            var flat = zeros(part.Numel);
            part.GatherParams(0, flat);
            var expected = arange(part.Numel).div(part.ShardSize, rounding_mode: RoundingMode.floor).add(1).to(ScalarType.Float32);
            Assert.That(flat.allclose(expected, 0, 0), Is.True);
        });
    }
}
