using TorchSharp;
using TorchSharp.Modules;
using ZCode.Config;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>AdamW with decoupled weight decay on weight matrices only (not biases, norms or embeddings' pad row).</summary>
public static class OptimizerFactory
{
    public static AdamW Create(nn.Module model, TrainConfig t)
    {
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad)
                continue;
            (Decays(name, p) ? decay : noDecay).Add(p);
        }
        var groups = new List<AdamW.ParamGroup>
        {
            new(decay, t.Lr, t.AdamBeta1, t.AdamBeta2, t.AdamEps, t.WeightDecay),
            new(noDecay, t.Lr, t.AdamBeta1, t.AdamBeta2, t.AdamEps, 0.0),
        };
        return optim.AdamW(groups, t.Lr, t.AdamBeta1, t.AdamBeta2, t.AdamEps, t.WeightDecay);
    }

    /// <summary>Whether AdamW's weight decay applies to the parameter: weight matrices yes, biases and norms no.</summary>
    public static bool Decays(string name, Parameter p)
        => !(p.dim() < 2 || IsBias(name) || name.Contains("norm", StringComparison.Ordinal));

    // MoE expert biases are stacked [E, n] tensors named b1/b2, so dimensionality alone does not identify them.
    private static bool IsBias(string name)
        => name.EndsWith(".bias", StringComparison.Ordinal) || name.EndsWith(".b1", StringComparison.Ordinal)
           || name.EndsWith(".b2", StringComparison.Ordinal);

    public static void SetLearningRate(AdamW optimizer, double lr)
    {
        foreach (var g in optimizer.ParamGroups)
            g.LearningRate = lr;
    }
}
