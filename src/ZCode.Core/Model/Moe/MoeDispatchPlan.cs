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
    public static MoeDispatchPlan From(MoeRoutingResult r)
    {
        long spare = r.TokensPerExpert.shape[0] * r.Capacity;
        var rows = (r.ExpertIndex * r.Capacity + r.Position).masked_fill(r.Kept.logical_not(), spare);
        return new MoeDispatchPlan(r.TokenIndex, rows, r.Gate);
    }
}
