using static TorchSharp.torch;

namespace ZCode.Model.Moe;

/// <summary>
/// Every token-slot of a routing as flat indices: its token (row of the [S, d] input), its row expert*C + position in
/// the [E*C, d] dispatch buffer, and its combine weight. Slots that are not kept (dropped or masked) point at the spare
/// row E*C, which <see cref="MoeLayer.Dispatch"/> discards, and have weight 0. Keeping all S*k slots (rather than
/// selecting the kept ones) gives every tensor a size known on the host, so routing and dispatch never wait for the
/// device. O(S*k) memory.
/// </summary>
public sealed record MoeDispatchPlan(Tensor Tokens, Tensor Rows, Tensor Gates)
{
    /// <summary>The plan of <paramref name="r"/>; no host synchronisation.</summary>
    /// <param name="r">The routing.</param>
    /// <param name="stride">Rows per expert in the buffer, at least r.Capacity (expert parallelism pads every rank's
    /// buffer to the group's largest capacity); null means r.Capacity. The spare row is E*stride.</param>
    public static MoeDispatchPlan From(MoeRoutingResult r, long? stride = null)
    {
        long c = stride ?? r.Capacity;
        if (c < r.Capacity) throw new ArgumentOutOfRangeException(nameof(stride), c, $"must be at least the capacity {r.Capacity}");
        long spare = r.TokensPerExpert.shape[0] * c;
        var rows = (r.ExpertIndex * c + r.Position).masked_fill(r.Kept.logical_not(), spare);
        return new MoeDispatchPlan(r.TokenIndex, rows, r.Gate);
    }
}
