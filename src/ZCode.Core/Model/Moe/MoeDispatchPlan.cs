using static TorchSharp.torch;

namespace ZCode.Model.Moe;

/// <summary>
/// The kept token-slots of a routing as flat indices: for each kept slot its token (row of the [S, d] input), its row
/// expert*C + position in the [E*C, d] dispatch buffer, and its combine weight. O(S*k) memory.
/// </summary>
public sealed record MoeDispatchPlan(Tensor Tokens, Tensor Rows, Tensor Gates)
{
    /// <summary>Selects the kept slots of <paramref name="r"/> (one host synchronisation: the kept count).</summary>
    /// <param name="r">The routing.</param>
    /// <param name="stride">Rows per expert in the buffer, at least r.Capacity (expert parallelism pads every rank's
    /// buffer to the group's largest capacity); null means r.Capacity.</param>
    public static MoeDispatchPlan From(MoeRoutingResult r, long? stride = null)
    {
        long c = stride ?? r.Capacity;
        if (c < r.Capacity) throw new ArgumentOutOfRangeException(nameof(stride), c, $"must be at least the capacity {r.Capacity}");
        var kept = r.Kept.nonzero().reshape(-1);
        return new MoeDispatchPlan(
            r.TokenIndex.index_select(0, kept),
            r.ExpertIndex.index_select(0, kept) * c + r.Position.index_select(0, kept),
            r.Gate.index_select(0, kept));
    }
}
