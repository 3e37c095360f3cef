using ZCode.Config;

namespace ZCode.Model;

/// <summary>Exact parameter counts of <see cref="Seq2SeqTransformer"/> derived from the config alone.</summary>
/// <param name="Total">Every parameter.</param>
/// <param name="Base">
/// The dense base model in DeepSpeed-MoE's sense ("1.3B+MoE-128"): every non-expert parameter plus one expert FFN
/// per MoE layer, i.e. the dense model the MoE was grown from (the paper's "0.7B base" of its 10B model).
/// </param>
/// <param name="NonExpert">Parameters outside the experts (shared by all ranks), routers included.</param>
/// <param name="PerExpert">One expert FFN: d*ffn + ffn + ffn*d + d.</param>
/// <param name="Expert">All expert parameters: PerExpert * experts * MoE layers.</param>
/// <param name="ActivePerToken">Parameters one token touches: NonExpert + top_k experts in every MoE layer.</param>
public sealed record ParameterCount(long Total, long Base, long NonExpert, long PerExpert, long Expert, long ActivePerToken,
    int EncoderMoeLayers, int DecoderMoeLayers, long Embedding)
{
    /// <summary>Computes the counts without allocating anything.</summary>
    public static ParameterCount Of(ModelConfig m)
    {
        long d = m.DModel, f = m.FfnDim, e = m.Moe.Experts;
        long attention = 4 * (d * d + d);
        long layerNorm = 2 * d;
        long denseFfn = d * f + f + f * d + d;
        long perExpert = denseFfn;
        long router = e * d;

        long embedding = (long)m.VocabSize * d + (m.Positions == "learned" ? (long)m.MaxPositions * d : 0);
        int encMoe = MoeLayout.CountMoeLayers(m.Moe, m.EncoderLayers);
        int decMoe = MoeLayout.CountMoeLayers(m.Moe, m.DecoderLayers);
        int moeLayers = encMoe + decMoe;

        long encoderLayersShared = m.EncoderLayers * (attention + 2 * layerNorm);
        long decoderLayersShared = m.DecoderLayers * (2 * attention + 3 * layerNorm);
        long denseFfns = (m.EncoderLayers - encMoe + m.DecoderLayers - decMoe) * denseFfn;
        long finalNorms = 2 * layerNorm;

        long nonExpert = embedding + encoderLayersShared + decoderLayersShared + denseFfns + finalNorms + moeLayers * router;
        long expert = moeLayers * e * perExpert;
        long active = nonExpert + moeLayers * Math.Min(m.Moe.TopK, e) * perExpert;
        long baseModel = nonExpert + moeLayers * perExpert;
        return new ParameterCount(nonExpert + expert, baseModel, nonExpert, perExpert, expert, active, encMoe, decMoe, embedding);
    }
}
