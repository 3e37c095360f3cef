using ZCode.Data;
using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>Teacher-forced passes over fixed batches (eval mode, no grad): expert usage per MoE layer for pruning.</summary>
public static class ModelProbe
{
    /// <summary>Kept tokens routed to each expert, per MoE layer, summed over the batches.</summary>
    public static double[][] ExpertUsage(Seq2SeqTransformer model, IEnumerable<Batch> batches)
    {
        var layers = model.MoeLayers;
        var usage = layers.Select(l => new double[l.Experts]).ToArray();
        model.eval();
        using var _ = no_grad();
        foreach (var batch in batches)
        {
            using var scope = NewDisposeScope();
            var (src, tgtIn, _) = batch.ToTensors(CPU);
            model.call(src, tgtIn);
            for (int l = 0; l < layers.Count; l++)
                if (layers[l].LastStats is { } s)
                    for (int e = 0; e < s.TokensPerExpert.Length; e++)
                        usage[l][e] += s.TokensPerExpert[e];
        }
        return usage;
    }

    /// <summary>Mean negative log-likelihood per target token (no label smoothing).</summary>
    public static double ValidNll(Seq2SeqTransformer model, IEnumerable<Batch> batches)
    {
        model.eval();
        using var _ = no_grad();
        double nll = 0;
        long tokens = 0;
        foreach (var batch in batches)
        {
            nll += ZCode.Evaluation.MtValidator.TeacherForcedNll(model, batch);
            tokens += batch.TgtTokenCount;
        }
        return nll / Math.Max(1, tokens);
    }
}
