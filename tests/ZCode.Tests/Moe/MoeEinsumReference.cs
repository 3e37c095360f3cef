using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ZCode.Tests.Moe;

/// <summary>
/// A deliberately plain DeepSpeed-style MoE forward (GShard "Algorithm 2"): one-hot masks, cumsum locations,
/// an [S, E, C] combine tensor and einsum dispatch/combine. Used only to check the index-based layer.
/// </summary>
internal static class MoeEinsumReference
{
    public sealed record Output(Tensor Y, Tensor Aux, Tensor Z);

    public static Output Forward(Tensor x2, Tensor routerWeight, Tensor w1, Tensor b1, Tensor w2, Tensor b2, int topK, long capacity)
    {
        long s = x2.shape[0], e = routerWeight.shape[0];
        var logits = functional.linear(x2, routerWeight);
        var probs = functional.softmax(logits, 1);

        var idx1 = probs.argmax(1);
        var mask1 = functional.one_hot(idx1, e).to(ScalarType.Float32);
        var loc1 = mask1.cumsum(0) - 1;
        var locIdx1 = (loc1 * mask1).sum(1).to(ScalarType.Int64);
        var g1 = (probs * mask1).sum(1);
        var keep1 = loc1.lt(capacity).to(ScalarType.Float32) * mask1;
        g1 = g1 * keep1.sum(1);

        var dispatch = einsum("se,sc->sec", keep1, functional.one_hot(locIdx1.clamp_max(capacity - 1), capacity).to(ScalarType.Float32));
        Tensor combine;
        if (topK == 1)
        {
            combine = dispatch * g1.view(s, 1, 1);
        }
        else
        {
            var idx2 = probs.masked_fill(mask1.to(ScalarType.Bool), double.NegativeInfinity).argmax(1);
            var mask2 = functional.one_hot(idx2, e).to(ScalarType.Float32);
            var loc2 = mask2.cumsum(0) - 1 + mask1.sum(0, keepdim: true);
            var locIdx2 = (loc2 * mask2).sum(1).to(ScalarType.Int64);
            var keep2 = loc2.lt(capacity).to(ScalarType.Float32) * mask2;
            var g2 = (probs * mask2).sum(1) * keep2.sum(1);
            var denom = (g1 + g2).clamp_min(1.1920929e-07f);
            var dispatch2 = einsum("se,sc->sec", keep2, functional.one_hot(locIdx2.clamp_max(capacity - 1), capacity).to(ScalarType.Float32));
            combine = dispatch * (g1 / denom).view(s, 1, 1) + dispatch2 * (g2 / denom).view(s, 1, 1);
            dispatch = dispatch + dispatch2;
        }

        var expertIn = einsum("sec,sm->ecm", dispatch, x2);
        var hidden = functional.relu(einsum("ecm,emf->ecf", expertIn, w1) + b1.unsqueeze(1));
        var expertOut = einsum("ecf,efm->ecm", hidden, w2) + b2.unsqueeze(1);
        var y = einsum("sec,ecm->sm", combine, expertOut);

        var aux = (probs.mean(new long[] { 0 }) * mask1.mean(new long[] { 0 })).sum() * e;
        var lse = logits.logsumexp(1);
        return new Output(y, aux, (lse * lse).mean());
    }
}
