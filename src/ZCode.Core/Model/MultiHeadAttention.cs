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
        using var _ = ZCode.Runtime.StepProfile.Measure("attention");
        var (k, v) = KeysValues(keyValue);
        long lq = query.shape[1], lk = keyValue.shape[1];
        var mask = keyMask?.view(query.shape[0], 1, 1, lk);
        if (causal)
        {
            var tri = ones(lq, lk, dtype: ScalarType.Bool, device: query.device).tril(lk - lq);
            mask = mask is null ? tri : mask.logical_and(tri);
        }
        return Attend(query, k, v, mask);
    }

    /// <summary>Keys and values of keyValue [B, Lk, d], split into heads: each [B, H, Lk, dh] (for a decoding cache).</summary>
    public (Tensor K, Tensor V) KeysValues(Tensor keyValue) => (Heads(k_proj, keyValue), Heads(v_proj, keyValue));

    /// <summary>
    /// Attention of query [B, Lq, d] over precomputed keys/values [B, H, Lk, dh] (see <see cref="KeysValues"/>);
    /// keyMask [B, Lk] or null. No causal mask: an incremental decoder's cache holds only past keys.
    /// </summary>
    public Tensor AttendCached(Tensor query, Tensor k, Tensor v, Tensor? keyMask)
        => Attend(query, k, v, keyMask?.view(query.shape[0], 1, 1, k.shape[2]));

    /// <summary>The queries of query [B, Lq, d] over keys/values [B, H, Lk, dh] with a mask broadcastable to
    /// [B, H, Lq, Lk], heads merged and projected: [B, Lq, d].</summary>
    private Tensor Attend(Tensor query, Tensor k, Tensor v, Tensor? mask)
    {
        long b = query.shape[0], lq = query.shape[1], d = query.shape[2];
        // SDPA needs the mask in the compute dtype's broadcastable bool form; it handles bf16 q/k/v. In CPU training it
        // runs in fp32 even for 16-bit q/k/v: LibTorch's bf16 CPU attention backward is about twice as slow as its
        // fp32 one at these head sizes (the casts cost less than the difference, and the scores get fp32 precision).
        var q = Heads(q_proj, query);
        var dtype = q.dtype;
        if (training && q.device_type == DeviceType.CPU && dtype != ScalarType.Float32)
        {
            q = q.to(ScalarType.Float32);
            k = k.to(ScalarType.Float32);
            v = v.to(ScalarType.Float32);
        }
        var attn = nn.functional.scaled_dot_product_attention(q, k, v, mask, training ? dropout : 0.0).to(dtype);
        return Projection.Apply(out_proj, attn.transpose(1, 2).reshape(b, lq, d));
    }

    /// <summary>x [B, L, d] through <paramref name="projection"/>, split into heads: [B, H, L, dh].</summary>
    private Tensor Heads(Linear projection, Tensor x)
        => Projection.Apply(projection, x).view(x.shape[0], x.shape[1], heads, x.shape[2] / heads).transpose(1, 2);
}
