using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>Sequence losses; sums over real target tokens so callers normalise by token count (not by batches).</summary>
public static class Losses
{
    /// <summary>
    /// Label-smoothed cross entropy (fairseq form: (1-eps)*nll + eps*mean over vocab of -log p), summed over
    /// non-pad targets. Returns (smoothed loss sum, nll sum).
    /// </summary>
    public static (Tensor Loss, Tensor Nll) LabelSmoothedCrossEntropy(Tensor logits, Tensor targets, int padId, double epsilon)
    {
        var v = logits.shape[^1];
        var lprobs = nn.functional.log_softmax(logits.reshape(-1, v), 1);
        var flat = targets.reshape(-1);
        var keep = flat.ne(padId);
        var nll = -lprobs.gather(1, flat.clamp_min(0).unsqueeze(1)).squeeze(1);
        nll = nll.masked_fill(keep.logical_not(), 0.0);
        var nllSum = nll.sum();
        if (epsilon <= 0)
            return (nllSum, nllSum);
        var smooth = (-lprobs.mean([1L])).masked_fill(keep.logical_not(), 0.0).sum();
        return ((1 - epsilon) * nllSum + epsilon * smooth, nllSum);
    }
}
