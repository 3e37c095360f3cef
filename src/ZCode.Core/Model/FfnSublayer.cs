using TorchSharp;
using ZCode.Config;
using ZCode.Model.Moe;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>The FFN slot of a layer: a dense FFN, or an MoE layer when this layer index is an MoE layer.</summary>
public sealed class FfnSublayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly FeedForward? dense;
    private readonly MoeLayer? moe;

    public FfnSublayer(string name, ModelConfig cfg, bool isMoe, ExpertParallelGroup? expertGroup = null) : base(name)
    {
        if (isMoe)
            moe = new MoeLayer("moe", cfg.DModel, cfg.FfnDim, cfg.Moe, cfg.Dropout, expertGroup);
        else
            dense = new FeedForward("dense", cfg.DModel, cfg.FfnDim, cfg.Dropout);
        RegisterComponents();
    }

    public MoeLayer? Moe => moe;

    public override Tensor forward(Tensor x, Tensor tokenMask)
        => moe is not null ? moe.call(x, tokenMask) : dense!.call(x);
}
