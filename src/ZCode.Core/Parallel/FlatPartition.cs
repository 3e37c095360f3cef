using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>One parameter's place in a flat vector: elements [Offset, Offset + Numel).</summary>
/// <param name="Name">State-dict name.</param>
/// <param name="Decay">Whether AdamW's decoupled weight decay applies (weights, not biases/norms).</param>
/// <param name="FirstExpert">For a stacked expert parameter [E_local, ...]: the global id of its first local expert
/// (local expert j is global FirstExpert + j); -1 for a non-expert parameter.</param>
public sealed record FlatSlot(string Name, Parameter Param, long Offset, long Numel, bool Decay, int FirstExpert = -1)
{
    /// <summary>Local experts stacked in the parameter (1 for a non-expert parameter).</summary>
    public long Experts => FirstExpert < 0 ? 1 : Param.shape[0];
}

/// <summary>
/// A set of parameters laid end to end in one flat fp32 vector of N elements (weight-decayed parameters first), and
/// the DeepSpeed-style element-wise partition of it over a group of W ranks: rank r owns the contiguous slice
/// [r*S, (r+1)*S) with S = ceil(N / W) (the tail past N is padding, always zero). Element-wise rather than
/// per-parameter, so one huge tensor (m3-tiny's embedding is ~37% of it) still splits evenly.
/// <para>Buckets: collectives go over bucket k, which holds chunk k of every rank's slice (chunk length
/// c = bucket elements / W, the last one shorter): W pieces laid out rank after rank, so one reduce-scatter of the
/// bucket hands each rank exactly chunk k of its own slice, and one all-reduce or all-gather covers W pieces.</para>
/// </summary>
public sealed class FlatPartition
{
    private readonly long[] offsets;

    public FlatPartition(IReadOnlyList<FlatSlot> slots, int ranks, int rank, long bucketElements)
    {
        if (ranks < 1 || rank < 0 || rank >= ranks) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} of {ranks}");
        if (bucketElements < 1) throw new ArgumentOutOfRangeException(nameof(bucketElements));
        long at = 0;
        foreach (var s in slots)
        {
            if (s.Offset != at) throw new ArgumentException($"slot {s.Name} starts at {s.Offset}, expected {at}", nameof(slots));
            at += s.Numel;
        }
        Slots = slots;
        offsets = slots.Select(s => s.Offset).ToArray();
        Numel = at;
        Ranks = ranks;
        Rank = rank;
        ShardSize = (Numel + ranks - 1) / ranks;
        Chunk = Math.Max(1, Math.Min(ShardSize, bucketElements / ranks));
        DecayEnd = slots.Where(s => s.Decay).Select(s => s.Offset + s.Numel).DefaultIfEmpty(0).Max();
        if (slots.Any(s => !s.Decay && s.Offset < DecayEnd))
            throw new ArgumentException("weight-decayed parameters must come first", nameof(slots));
    }

    /// <summary>Lays out <paramref name="parameters"/> (decayed ones first, each group in the given order).</summary>
    public static FlatPartition Build(IEnumerable<(string Name, Parameter Param, bool Decay, int FirstExpert)> parameters,
        int ranks, int rank, long bucketElements)
    {
        var list = parameters.ToList();
        var slots = new List<FlatSlot>();
        long at = 0;
        foreach (var (name, p, decay, first) in list.Where(x => x.Decay).Concat(list.Where(x => !x.Decay)))
        {
            slots.Add(new FlatSlot(name, p, at, p.numel(), decay, first));
            at += p.numel();
        }
        return new FlatPartition(slots, ranks, rank, bucketElements);
    }

    public IReadOnlyList<FlatSlot> Slots { get; }
    /// <summary>N: elements of all parameters.</summary>
    public long Numel { get; }
    /// <summary>W: ranks sharing the vector.</summary>
    public int Ranks { get; }
    public int Rank { get; }
    /// <summary>S = ceil(N / W): elements owned by each rank (the last rank's slice may end in padding).</summary>
    public long ShardSize { get; }
    /// <summary>First element of this rank's slice.</summary>
    public long ShardStart => Rank * ShardSize;
    /// <summary>Elements [0, DecayEnd) are weight-decayed, the rest are not.</summary>
    public long DecayEnd { get; }
    /// <summary>c: elements of one rank's slice per bucket.</summary>
    public long Chunk { get; }
    public int Buckets => ShardSize == 0 ? 0 : (int)((ShardSize + Chunk - 1) / Chunk);

    /// <summary>Start (within a rank's slice) and length of chunk <paramref name="bucket"/>.</summary>
    public (long Start, long Length) ChunkOf(int bucket)
    {
        long start = bucket * Chunk;
        return (start, Math.Min(Chunk, ShardSize - start));
    }

    /// <summary>Decayed elements at the head of this rank's slice.</summary>
    public long DecayedInShard => Math.Clamp(DecayEnd - ShardStart, 0, ShardSize);

    /// <summary>
    /// Calls <paramref name="visit"/>(slot, element offset in the slot, offset in the range, count) for every piece of
    /// the flat range [start, start + length) that falls on a parameter (padding past N is skipped).
    /// </summary>
    public void ForEachPiece(long start, long length, Action<FlatSlot, long, long, long> visit)
    {
        long end = Math.Min(start + length, Numel);
        if (start >= end) return;
        int i = Array.BinarySearch(offsets, start);
        if (i < 0) i = ~i - 1;
        for (long at = start; at < end; i++)
        {
            var s = Slots[i];
            if (s.Numel == 0) continue;
            long inSlot = at - s.Offset;
            long n = Math.Min(s.Numel - inSlot, end - at);
            visit(s, inSlot, at - start, n);
            at += n;
        }
    }

    /// <summary>Copies the gradients of flat range [start, start + dst.numel()) into <paramref name="dst"/> (zeros for
    /// padding and for parameters without a gradient).</summary>
    public void GatherGrads(long start, Tensor dst)
    {
        if (start + dst.numel() > Numel) dst.zero_();
        ForEachPiece(start, dst.numel(), (s, inSlot, inRange, n) =>
        {
            using var g = s.Param.grad;
            using var d = dst.narrow(0, inRange, n);
            if (g is null) { d.zero_(); return; }
            using var flat = g.view(-1);
            using var src = flat.narrow(0, inSlot, n);
            d.copy_(src);
        });
    }
}
