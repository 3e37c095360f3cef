using TorchSharp;
using TorchSharp.Modules;
using ZCode.Config;
using ZCode.Model.Moe;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>Pre-LN encoder layer: x + SelfAttn(LN(x)); x + FFN_or_MoE(LN(x)).</summary>
public sealed class EncoderLayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly LayerNorm self_attn_norm, ffn_norm;
    private readonly MultiHeadAttention self_attn;
    private readonly FfnSublayer ffn;
    private readonly double dropout;

    public EncoderLayer(string name, ModelConfig cfg, bool isMoe, ExpertParallelGroup? expertGroup = null) : base(name)
    {
        self_attn_norm = nn.LayerNorm(cfg.DModel);
        self_attn = new MultiHeadAttention("self_attn", cfg.DModel, cfg.Heads, cfg.AttentionDropout);
        ffn_norm = nn.LayerNorm(cfg.DModel);
        ffn = new FfnSublayer("ffn", cfg, isMoe, expertGroup);
        dropout = cfg.Dropout;
        RegisterComponents();
    }

    public MoeLayer? Moe => ffn.Moe;

    /// <summary>Dtype of the sublayers' computation (their inputs are cast to it); the residual stream stays fp32.</summary>
    public ScalarType ComputeDtype { get; set; } = ScalarType.Float32;

    /// <summary>x [B, L, d]; tokenMask [B, L] bool, true for real (non-pad) tokens.</summary>
    public override Tensor forward(Tensor x, Tensor tokenMask)
    {
        var h = LayerNormIn.Apply(self_attn_norm, x, ComputeDtype);
        h = self_attn.call(h, h, tokenMask, false);
        x = x + CounterDropout.Apply(h, dropout, training);
        h = ffn.call(LayerNormIn.Apply(ffn_norm, x, ComputeDtype), tokenMask);
        return x + CounterDropout.Apply(h, dropout, training);
    }
}
