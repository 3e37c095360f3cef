using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// Global-norm gradient clipping that stays on the device: torch's clip_grad_norm_ formula (coefficient
/// max_norm / (norm + 1e-6), clamped at 1, applied to every gradient), but the norm is returned as a tensor rather
/// than a double, so a step needs no host synchronisation; the trainer reads the norm at log steps only.
/// </summary>
public static class GradientClipping
{
    /// <summary>Clips the gradients of <paramref name="parameters"/> in place when <paramref name="maxNorm"/> &gt; 0;
    /// returns the fp32 total 2-norm before clipping (a scalar tensor in the caller's dispose scope).</summary>
    public static Tensor ClipByGlobalNorm(IEnumerable<Tensor> parameters, double maxNorm)
    {
        using var _ = no_grad();
        var list = parameters.ToList();
        var grads = list.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0)
            return zeros(1, ScalarType.Float32, list.Count > 0 ? list[0].device : CPU).squeeze();
        var norms = stack(grads.Select(g => linalg.vector_norm(g, 2).to_type(ScalarType.Float32)).ToArray());
        var total = linalg.vector_norm(norms, 2);
        if (maxNorm > 0)
        {
            var coef = ((total + 1e-6).reciprocal() * maxNorm).clamp_max(1.0);
            foreach (var g in grads)
                g.mul_(coef.to_type(g.dtype));
        }
        return total;
    }
}
