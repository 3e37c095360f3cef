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

    /// <summary>Keys and values of keyValue [B, Lk, d], split into heads: each [B, H, Lk, dh] (for a decoding cache).</summary>
    public (Tensor K, Tensor V) KeysValues(Tensor keyValue)
    {
        long b = keyValue.shape[0], lk = keyValue.shape[1], d = keyValue.shape[2];
        long dh = d / heads;
        var k = Projection.Apply(k_proj, keyValue).view(b, lk, heads, dh).transpose(1, 2);
        var v = Projection.Apply(v_proj, keyValue).view(b, lk, heads, dh).transpose(1, 2);
        return (k, v);
    }

    /// <summary>
    /// Attention of query [B, Lq, d] over precomputed keys/values [B, H, Lk, dh] (see <see cref="KeysValues"/>);
    /// keyMask [B, Lk] or null. No causal mask: an incremental decoder's cache holds only past keys.
    /// </summary>
    public Tensor AttendCached(Tensor query, Tensor k, Tensor v, Tensor? keyMask)
    {
        long b = query.shape[0], lq = query.shape[1], d = query.shape[2];
        long dh = d / heads;
        var q = Projection.Apply(q_proj, query).view(b, lq, heads, dh).transpose(1, 2);
        var mask = keyMask?.view(b, 1, 1, k.shape[2]);
        var attn = nn.functional.scaled_dot_product_attention(q, k, v, mask, training ? dropout : 0.0);
        return Projection.Apply(out_proj, attn.transpose(1, 2).reshape(b, lq, d));
    }
}
