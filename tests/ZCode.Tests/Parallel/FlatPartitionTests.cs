using TorchSharp;
using TorchSharp.Modules;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Tests.Parallel;

/// <summary>Element-wise ZeRO partition arithmetic: slices, decay-first layout, buckets and pieces.</summary>
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
}
