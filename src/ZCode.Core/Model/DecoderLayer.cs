using TorchSharp;
using TorchSharp.Modules;
using ZCode.Config;
using ZCode.Model.Moe;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>Pre-LN decoder layer: causal self-attention, cross-attention on the encoder output, FFN or MoE.</summary>
public sealed class DecoderLayer : nn.Module<Tensor, Tensor, Tensor, Tensor, Tensor>
{
    private readonly LayerNorm self_attn_norm, cross_attn_norm, ffn_norm;
    private readonly MultiHeadAttention self_attn, cross_attn;
    private readonly FfnSublayer ffn;
    private readonly double dropout;

    public DecoderLayer(string name, ModelConfig cfg, bool isMoe, ExpertParallelGroup? expertGroup = null) : base(name)
    {
        self_attn_norm = nn.LayerNorm(cfg.DModel);
        self_attn = new MultiHeadAttention("self_attn", cfg.DModel, cfg.Heads, cfg.AttentionDropout);
        cross_attn_norm = nn.LayerNorm(cfg.DModel);
        cross_attn = new MultiHeadAttention("cross_attn", cfg.DModel, cfg.Heads, cfg.AttentionDropout);
        ffn_norm = nn.LayerNorm(cfg.DModel);
        ffn = new FfnSublayer("ffn", cfg, isMoe, expertGroup);
        dropout = cfg.Dropout;
        RegisterComponents();
    }

    public MoeLayer? Moe => ffn.Moe;

    /// <summary>Dtype of the sublayers' computation (their inputs are cast to it); the residual stream stays fp32.</summary>
    public ScalarType ComputeDtype { get; set; } = ScalarType.Float32;

    /// <summary>
    /// x [B, Lt, d]; targetMask [B, Lt] real target positions (routing only; causality handles padding);
    /// memory [B, Ls, d] encoder output; sourceMask [B, Ls].
    /// </summary>
    public override Tensor forward(Tensor x, Tensor targetMask, Tensor memory, Tensor sourceMask)
    {
        var h = LayerNormIn.Apply(self_attn_norm, x, ComputeDtype);
        h = self_attn.call(h, h, null, true);
        x = x + CounterDropout.Apply(h, dropout, training);
        h = cross_attn.call(LayerNormIn.Apply(cross_attn_norm, x, ComputeDtype), memory, sourceMask, false);
        x = x + CounterDropout.Apply(h, dropout, training);
        h = ffn.call(LayerNormIn.Apply(ffn_norm, x, ComputeDtype), targetMask);
        return x + CounterDropout.Apply(h, dropout, training);
    }

    /// <summary>Cross-attention keys/values of the encoder output, computed once per source for <see cref="Step"/>.</summary>
    public (Tensor K, Tensor V) CrossKeysValues(Tensor memory) => cross_attn.KeysValues(memory);

    /// <summary>
    /// One incremental step, the same computation as <see cref="forward"/> for the newest position: x [B, 1, d];
    /// cache holds this layer's past self-attention keys/values (extended here) and the cross keys/values.
    /// </summary>
    public Tensor Step(Tensor x, DecoderLayerCache cache, Tensor sourceMask)
    {
        var h = LayerNormIn.Apply(self_attn_norm, x, ComputeDtype);
        var (k, v) = self_attn.KeysValues(h);
        cache.AppendSelf(k, v);
        h = self_attn.AttendCached(h, cache.SelfK!, cache.SelfV!, null);
        x = x + CounterDropout.Apply(h, dropout, training);
        h = cross_attn.AttendCached(LayerNormIn.Apply(cross_attn_norm, x, ComputeDtype), cache.CrossK, cache.CrossV, sourceMask);
        x = x + CounterDropout.Apply(h, dropout, training);
        // Every row of a step is a real token (finished hypotheses leave the batch), so the routing mask is all true.
        var tokenMask = ones(x.shape[0], x.shape[1], dtype: ScalarType.Bool, device: x.device);
        h = ffn.call(LayerNormIn.Apply(ffn_norm, x, ComputeDtype), tokenMask);
        return x + CounterDropout.Apply(h, dropout, training);
    }
}
