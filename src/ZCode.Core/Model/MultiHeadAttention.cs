using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>Multi-head attention on top of LibTorch's fused scaled-dot-product attention.</summary>
public sealed class MultiHeadAttention : nn.Module<Tensor, Tensor, Tensor?, bool, Tensor>
{
    private readonly Linear q_proj, k_proj, v_proj, out_proj;
    private readonly int heads;
    private readonly double dropout;

    public MultiHeadAttention(string name, int dModel, int heads, double attentionDropout) : base(name)
    {
        this.heads = heads;
        dropout = attentionDropout;
        q_proj = nn.Linear(dModel, dModel);
        k_proj = nn.Linear(dModel, dModel);
        v_proj = nn.Linear(dModel, dModel);
        out_proj = nn.Linear(dModel, dModel);
        RegisterComponents();
    }

    /// <summary>
    /// query [B, Lq, d], keyValue [B, Lk, d]; keyMask [B, Lk] bool (true = attend) or null; causal masks future keys.
    /// </summary>
    public override Tensor forward(Tensor query, Tensor keyValue, Tensor? keyMask, bool causal)
    {
        long b = query.shape[0], lq = query.shape[1], lk = keyValue.shape[1], d = query.shape[2];
        long dh = d / heads;
        var q = Projection.Apply(q_proj, query).view(b, lq, heads, dh).transpose(1, 2);
        var k = Projection.Apply(k_proj, keyValue).view(b, lk, heads, dh).transpose(1, 2);
        var v = Projection.Apply(v_proj, keyValue).view(b, lk, heads, dh).transpose(1, 2);

        Tensor? mask = null;
        if (keyMask is not null)
            mask = keyMask.view(b, 1, 1, lk);
        if (causal)
        {
            var tri = ones(lq, lk, dtype: ScalarType.Bool, device: query.device).tril(lk - lq);
            mask = mask is null ? tri : mask.logical_and(tri);
        }
        var p = training ? dropout : 0.0;
        // SDPA needs the mask in the compute dtype's broadcastable bool form; it handles bf16 q/k/v.
        var attn = nn.functional.scaled_dot_product_attention(q, k, v, mask, p);
        var merged = attn.transpose(1, 2).reshape(b, lq, d);
        return Projection.Apply(out_proj, merged);
    }
}
