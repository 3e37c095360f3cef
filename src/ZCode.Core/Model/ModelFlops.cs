using ZCode.Config;

namespace ZCode.Model;

/// <summary>
/// The floating-point operations of a training step of a model shape, counted the usual way for model FLOPs
/// utilisation: every matrix multiplication at 2 FLOPs per multiply-add, forward once and backward twice (3x forward);
/// attention scores and weighted values at their full (unmasked) size as computed; each token through top_k experts.
/// Element-wise work (norms, softmax, dropout) is left out, as in PaLM's MFU.
/// </summary>
public static class ModelFlops
{
    /// <summary>FLOPs of forward + backward of <paramref name="batch"/> sentences of <paramref name="srcLen"/> source and
    /// <paramref name="tgtLen"/> target tokens.</summary>
    public static double TrainingStep(ModelConfig m, long batch, long srcLen, long tgtLen)
    {
        double d = m.DModel, f = m.FfnDim, ls = srcLen, lt = tgtLen;
        double Ffn(int layer) => MoeLayout.IsMoeLayer(m.Moe, layer) ? m.Moe.TopK * 4 * d * f + 2 * d * m.Moe.Experts : 4 * d * f;
        double source = 0, target = 0;
        for (int i = 0; i < m.EncoderLayers; i++)
            source += 8 * d * d + 4 * ls * d + Ffn(i);
        for (int i = 0; i < m.DecoderLayers; i++)
        {
            target += 8 * d * d + 4 * lt * d;            // self-attention: projections, scores and values
            target += 4 * d * d + 4 * ls * d;            // cross-attention: query and output projections, scores, values
            source += 4 * d * d;                          // cross-attention keys and values of the source
            target += Ffn(i);
        }
        target += 2 * d * m.VocabSize;                    // output projection
        return 3 * batch * (ls * source + lt * target);
    }
}
