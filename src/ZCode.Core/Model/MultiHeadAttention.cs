using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>Multi-head attention: LibTorch's fused scaled-dot-product attention, or explicit bf16 matmuls in 16-bit CPU
/// training.</summary>
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
        var q = Heads(q_proj, query);
        Tensor attn;
        if (!training || q.device_type != DeviceType.CPU || q.dtype == ScalarType.Float32)
            attn = nn.functional.scaled_dot_product_attention(q, k, v, mask, training ? dropout : 0.0);
        else if (heads * k.shape[2] <= ExplicitScoresPerQuery)
            attn = ExplicitAttention(q, k, v, mask, dropout);
        else
            // LibTorch's 16-bit CPU attention backward is about twice as slow as its fp32 one: long keys run in fp32.
            attn = nn.functional.scaled_dot_product_attention(q.to(ScalarType.Float32), k.to(ScalarType.Float32),
                v.to(ScalarType.Float32), mask, dropout).to(q.dtype);
        return Projection.Apply(out_proj, attn.transpose(1, 2).reshape(b, lq, d));
    }

    // The explicit form keeps every query's scores for backward (fp32 weights and their 16-bit copy, 6 bytes per head
    // and key), where fused attention keeps O(1) per query. Up to this many heads x keys per query (12 KB per token and
    // attention, about what an FFN of 2048 keeps per token) it is used; longer keys go to fused attention in fp32.
    private const long ExplicitScoresPerQuery = 2048;

    /// <summary>
    /// Attention as two batched 16-bit matmuls around an fp32 softmax, as PyTorch's autocast runs it; for 16-bit CPU
    /// training. LibTorch's fused CPU attention is slow in 16 bits (its bf16 backward about twice its fp32 one at
    /// head size 64), and running it in fp32 leaves the matrix units idle: at the shapes of a d256 model the explicit
    /// form takes half the time of fp32 SDPA, forward and backward. Scores are scaled and masked in fp32; masked keys
    /// get -inf, as SDPA's boolean mask does. A query with every key masked would get NaN weights where SDPA gives
    /// zeros; training never builds one (every sequence has real tokens, and a causal query sees itself).
    /// </summary>
    internal static Tensor ExplicitAttention(Tensor q, Tensor k, Tensor v, Tensor? mask, double dropout)
    {
        var scores = matmul(q, k.transpose(-2, -1)).to(ScalarType.Float32).mul_(1.0 / Math.Sqrt(q.shape[3]));
        // In place: the scores are this function's own tensor, and neither the scaling nor the fill keeps its input.
        if (mask is not null) scores.masked_fill_(mask.logical_not(), double.NegativeInfinity);
        var weights = CounterDropout.Apply(scores.softmax(-1), dropout, training: true);
        return matmul(weights.to(q.dtype), v);
    }

    /// <summary>x [B, L, d] through <paramref name="projection"/>, split into heads: [B, H, L, dh].</summary>
    private Tensor Heads(Linear projection, Tensor x)
        => Projection.Apply(projection, x).view(x.shape[0], x.shape[1], heads, x.shape[2] / heads).transpose(1, 2);
}
