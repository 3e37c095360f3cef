using static TorchSharp.torch;

namespace ZCode.Model.Moe;

/// <summary>
/// The kept token-slots of a routing as flat indices: for each kept slot its token (row of the [S, d] input), its row
/// expert*C + position in the [E*C, d] dispatch buffer, and its combine weight. O(S*k) memory.
/// </summary>
public sealed record MoeDispatchPlan(Tensor Tokens, Tensor Rows, Tensor Gates)
{
    /// <summary>Selects the kept slots of <paramref name="r"/> (one host synchronisation: the kept count).</summary>
    public static MoeDispatchPlan From(MoeRoutingResult r)
    {
        var kept = r.Kept.nonzero().reshape(-1);
        return new MoeDispatchPlan(
            r.TokenIndex.index_select(0, kept),
            r.ExpertIndex.index_select(0, kept) * r.Capacity + r.Position.index_select(0, kept),
            r.Gate.index_select(0, kept));
    }
}
