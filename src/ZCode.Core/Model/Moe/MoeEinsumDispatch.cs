using static TorchSharp.torch;

namespace ZCode.Model.Moe;

/// <summary>
/// The dense dispatch that <see cref="MoeLayer"/>'s index dispatch replaces: DeepSpeed/GShard "Algorithm 2" one-hot
/// [S, E, C] dispatch and combine tensors with einsum. It takes the layer's own routing (so any priority or noise
/// gives the same assignment) and the layer's experts, so it differs from <see cref="MoeLayer.forward"/> only in how
/// tokens move. Kept as the reference for the benchmark (<c>zcode bench moe</c>) and the equivalence tests; never used
/// in training: its memory is O(S*E*C) = O(k*cf*S^2).
/// </summary>
public static class MoeEinsumDispatch
{
    /// <summary>[S, d] output of <paramref name="layer"/>'s experts for routing <paramref name="r"/>, built as DeepSpeed
    /// does: per choice j, combine += gate_j * one_hot(expert_j, E) * one_hot(position_j, C); dispatch = the 0/1 mask.</summary>
    /// <param name="dispatchBytes">Bytes of the two [S, E, C] tensors (what the index dispatch avoids).</param>
    public static Tensor Forward(MoeLayer layer, Tensor x2, MoeRoutingResult r, out long dispatchBytes)
    {
        long s = x2.shape[0], e = layer.Experts, c = r.Capacity;
        dispatchBytes = 0;
        if (s == 0 || c == 0) return zeros_like(x2);
        var dtype = x2.dtype;
        Tensor? combine = null, dispatch = null;
        for (int j = 0; j < r.TopK; j++)
        {
            var expert = r.ExpertIndex.narrow(0, j * s, s);
            var kept = r.Kept.narrow(0, j * s, s).to(dtype);
            var position = r.Position.narrow(0, j * s, s).clamp(0, c - 1);
            var gate = r.Gate.narrow(0, j * s, s).to(dtype);
            var mask = nn.functional.one_hot(expert, e).to(dtype) * kept.unsqueeze(1);        // [S, E]
            var slot = nn.functional.one_hot(position, c).to(dtype);                           // [S, C]
            var d = mask.unsqueeze(2) * slot.unsqueeze(1);                                     // [S, E, C]
            var w = d * gate.view(s, 1, 1);
            dispatch = dispatch is null ? d : dispatch + d;
            combine = combine is null ? w : combine + w;
        }
        dispatchBytes = 2 * s * e * c * dispatch!.element_size();
        var dispatched = einsum("sec,sm->ecm", dispatch, x2);
        var expertOut = layer.ExpertForward(dispatched);
        return einsum("sec,ecm->sm", combine!, expertOut);
    }
}
