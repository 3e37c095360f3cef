using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ZCode.Model.Moe;

/// <summary>
/// Pure routing math for a Mixture-of-Experts layer (no parameters, no module state): capacity,
/// top-k expert choice, priority-ordered positions within each expert, capacity dropping, combine
/// weights and the router losses. Semantics follow DeepSpeed's <c>top1gating</c>/<c>top2gating</c>
/// (DeepSpeed <c>deepspeed/moe/sharded_moe.py</c>); the implementation sorts token-slots instead of building
/// [S, E, C] one-hot tensors, so memory is O(S*k) plus the [S, E] router probabilities.
/// </summary>
public static class MoeRouting
{
    /// <summary>torch.finfo(float32).eps, the clamp of the top-k renormalisation denominator (as DeepSpeed).</summary>
    public const float GateEps = 1.1920929e-07f;

    /// <summary>
    /// Per-expert capacity C = max(ceil(S/E * k*cf), minCapacity), then clamped to S.
    /// <para>Rounding matches DeepSpeed's <c>_capacity</c>: there k*cf is a float32 tensor, so the product
    /// (S/E) * (k*cf) is rounded to float32 before the ceiling (e.g. S=40, E=4, cf=1.1 gives 11, whereas a
    /// double product gives 11.000000000000002 and 12).</para>
    /// <para><paramref name="capacityFactor"/> == 0 means no dropping: C = S. The clamp to S (as DeepSpeed
    /// PRs #5353/#8155) never changes routing, since the k choices of a token are distinct experts, so an
    /// expert receives at most S assignments; it only avoids buffers larger than the batch.</para>
    /// </summary>
    /// <param name="tokens">Tokens routed in this group (S); 0 gives 0.</param>
    public static long Capacity(long tokens, int experts, int topK, double capacityFactor, int minCapacity)
    {
        if (tokens < 0) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "must be >= 0");
        if (experts < 1) throw new ArgumentOutOfRangeException(nameof(experts), experts, "must be >= 1");
        if (topK < 1 || topK > experts)
            throw new ArgumentOutOfRangeException(nameof(topK), topK, $"must be in [1, {experts}]");
        if (!(capacityFactor >= 0) || double.IsInfinity(capacityFactor))
            throw new ArgumentOutOfRangeException(nameof(capacityFactor), capacityFactor, "must be finite and >= 0");
        if (minCapacity < 0) throw new ArgumentOutOfRangeException(nameof(minCapacity), minCapacity, "must be >= 0");

        if (tokens == 0) return 0;
        if (capacityFactor == 0) return tokens;

        float perExpert = (float)((double)tokens / experts);
        float factor = (float)(topK * capacityFactor);
        float product = (float)(perExpert * factor);
        long c = (long)Math.Ceiling(product);
        c = Math.Max(c, minCapacity);
        return Math.Min(c, tokens);
    }

    /// <summary>
    /// Routes S tokens to experts.
    /// <list type="bullet">
    /// <item>Softmax over experts in fp32. First choice = argmax of the probabilities; choice j+1 = argmax with
    /// earlier choices masked out (on logits + Gumbel noise when <paramref name="secondChoiceGumbel"/>, as DeepSpeed's
    /// training-time <c>top2_2nd_expert_sampling</c>; off by default, and callers must not set it in eval).</item>
    /// <item>Positions: rank within the expert, all first choices before all second choices (DeepSpeed top-2),
    /// ordered within a choice rank by <paramref name="priority"/>. Kept = real token and position &lt; capacity.</item>
    /// <item>Gates: k = 1: the raw softmax probability of the chosen expert (not renormalised); k &gt;= 2: the
    /// probabilities renormalised over the kept choices after dropping (dropped choices count 0, denominator
    /// clamped at <see cref="GateEps"/>), so a lone surviving choice has weight 1 and a fully dropped token 0.</item>
    /// <item>AuxLoss = E * sum_e f_e * P_e, f_e = fraction of real tokens whose first choice is e (before dropping),
    /// P_e = mean router probability of e over real tokens. ZLoss = mean over real tokens of logsumexp(logits)^2.
    /// Both are 0 when there is no real token.</item>
    /// </list>
    /// Masked tokens (mask false) are not routed: they take no capacity, are never kept, have gate 0 and do not
    /// enter the losses or counts. No host synchronisation: the managed counts of the result are read lazily.
    /// </summary>
    /// <param name="logits">[S, E] router logits (cast to fp32 if needed).</param>
    /// <param name="tokenMask">[S] bool (true = real token), or null for all real.</param>
    /// <param name="topK">Choices per token, 1 &lt;= k &lt;= E.</param>
    /// <param name="capacity">Per-expert capacity C (see <see cref="Capacity"/>).</param>
    /// <param name="priority">Drop priority within an overflowing expert.</param>
    /// <param name="generator">Random source for <see cref="TokenPriority.Random"/> and Gumbel noise; null = torch's default.</param>
    /// <param name="secondChoiceGumbel">Add Gumbel noise to the logits when picking choices after the first.</param>
    /// <param name="firstChoiceGumbel">Pick the first choice as argmax of logits + Gumbel noise (DeepSpeed top-1
    /// <c>RSample</c>); its gate is still the clean softmax probability. Training only.</param>
    public static MoeRoutingResult Route(
        Tensor logits,
        Tensor? tokenMask,
        int topK,
        long capacity,
        TokenPriority priority,
        Generator? generator = null,
        bool secondChoiceGumbel = false,
        bool firstChoiceGumbel = false)
    {
        if (logits.dim() != 2) throw new ArgumentException($"logits must be [S, E], got [{string.Join(", ", logits.shape)}]", nameof(logits));
        long s = logits.shape[0];
        long e = logits.shape[1];
        if (e < 1) throw new ArgumentException("logits must have at least one expert column", nameof(logits));
        if (topK < 1 || topK > e) throw new ArgumentOutOfRangeException(nameof(topK), topK, $"must be in [1, {e}]");
        if (capacity < 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "must be >= 0");

        var device = logits.device;
        var logits32 = logits.dtype == ScalarType.Float32 ? logits : logits.to(ScalarType.Float32);
        Tensor? real = NormaliseMask(tokenMask, s);

        if (s == 0) return Empty(logits32, e, topK, capacity);

        long n = s * topK;
        var probs = functional.softmax(logits32, 1);
        var choices = SelectExperts(logits32, probs, topK, generator, secondChoiceGumbel, firstChoiceGumbel);

        // Token-slots in DeepSpeed order: slot j*S + s is token s's (j+1)-th choice.
        var expert = topK == 1 ? choices[0] : cat(choices, 0);
        var token = topK == 1 ? arange(s, ScalarType.Int64, device) : arange(s, ScalarType.Int64, device).repeat(topK);
        var gateRaw = topK == 1
            ? probs.gather(1, choices[0].unsqueeze(1)).reshape(n)
            : probs.gather(1, stack(choices, 1)).t().reshape(n);

        // Masked slots go to a sentinel expert E: sorted last, never kept, not counted.
        Tensor? realSlots = real is null ? null : (topK == 1 ? real : real.repeat(topK));
        var expertKey = realSlots is null ? expert : expert.masked_fill(realSlots.logical_not(), e);
        var group = topK == 1
            ? expertKey
            : expertKey * topK + arange(topK, ScalarType.Int64, device).repeat_interleave(s);

        var order = PriorityOrder(group, gateRaw, priority, generator);
        var counts = expertKey.bincount(null, e + 1);                       // [E+1], sentinel last
        var starts = counts.cumsum(0) - counts;                              // first sorted index of each expert
        var sortedExpert = expertKey.index_select(0, order);
        var sortedPosition = arange(n, ScalarType.Int64, device) - starts.index_select(0, sortedExpert);
        var position = empty(n, ScalarType.Int64, device: device).scatter_(0, order, sortedPosition);

        var kept = position.lt(capacity);
        if (realSlots is not null)
        {
            kept = kept.logical_and(realSlots);
            position = position.masked_fill(realSlots.logical_not(), -1);
        }

        var keptGate = gateRaw * kept.to(ScalarType.Float32);
        Tensor gate;
        if (topK == 1)
        {
            gate = keptGate;
        }
        else
        {
            var perToken = keptGate.view(topK, s);
            gate = (perToken / perToken.sum(0, keepdim: true).clamp_min(GateEps)).reshape(n);
        }

        var (aux, z) = Losses(logits32, probs, choices[0], real, e);
        var entropy = Entropy(probs, real);

        return new MoeRoutingResult
        {
            ExpertIndex = expert,
            TokenIndex = token,
            Position = position,
            Kept = kept,
            Gate = gate,
            AuxLoss = aux,
            ZLoss = z,
            Entropy = entropy,
            TokensPerExpert = counts.narrow(0, 0, e).clamp_max(capacity),
            AssignedPerExpert = counts.narrow(0, 0, e),
            Capacity = capacity,
            TopK = topK,
        };
    }

    /// <summary>[S] bool view of a mask of S tokens (any shape, any dtype: nonzero = real), or null; validates its size.</summary>
    internal static Tensor? NormaliseMask(Tensor? tokenMask, long s)
    {
        if (tokenMask is null) return null;
        if (tokenMask.numel() != s)
            throw new ArgumentException($"token mask has {tokenMask.numel()} elements for {s} tokens", nameof(tokenMask));
        var m = tokenMask.reshape(s);
        return m.dtype == ScalarType.Bool ? m : m.ne(0);
    }

    /// <summary>The k expert choices per token, each [S] int64: argmax, then argmax with earlier choices masked.</summary>
    private static Tensor[] SelectExperts(Tensor logits32, Tensor probs, int topK, Generator? generator, bool gumbel,
        bool firstGumbel)
    {
        var choices = new Tensor[topK];
        choices[0] = firstGumbel ? (logits32.detach() + Gumbel(logits32, generator)).argmax(1) : probs.argmax(1);
        if (topK == 1) return choices;

        var scores = gumbel ? logits32 + Gumbel(logits32, generator) : probs;

        long e = logits32.shape[1];
        var taken = functional.one_hot(choices[0], e).to(ScalarType.Bool);
        for (int j = 1; j < topK; j++)
        {
            choices[j] = scores.masked_fill(taken, double.NegativeInfinity).argmax(1);
            if (j + 1 < topK) taken = taken.logical_or(functional.one_hot(choices[j], e).to(ScalarType.Bool));
        }
        return choices;
    }

    /// <summary>Gumbel(0,1) noise shaped like <paramref name="like"/>: -log(-log(U)), U clamped away from 0 so it stays finite.</summary>
    private static Tensor Gumbel(Tensor like, Generator? generator)
    {
        var u = rand(like.shape, ScalarType.Float32, like.device, generator: generator).clamp_min(1.17549435e-38f);
        return u.log().neg().log().neg();
    }

    /// <summary>
    /// Permutation of the slots sorted by (group, priority) where group = expert*k + choice: a stable sort by
    /// the priority key, then a stable sort by group (a lexicographic two-pass sort). Order mode needs only
    /// the second pass, because slot order within a choice rank is already token order.
    /// </summary>
    private static Tensor PriorityOrder(Tensor group, Tensor gateRaw, TokenPriority priority, Generator? generator)
    {
        Tensor byPriority;
        switch (priority)
        {
            case TokenPriority.Order:
                return group.sort(stable: true).Indices;
            case TokenPriority.Random:
                var noise = rand(group.shape[0], ScalarType.Float32, group.device, generator: generator);
                byPriority = noise.sort(descending: true, stable: true).Indices;
                break;
            case TokenPriority.Score:
                byPriority = gateRaw.detach().sort(descending: true, stable: true).Indices;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(priority), priority, null);
        }
        var byGroup = group.index_select(0, byPriority).sort(stable: true).Indices;
        return byPriority.index_select(0, byGroup);
    }

    /// <summary>Mean over real tokens of the router distribution's entropy -sum_e p log p (nats), detached; for
    /// statistics only. ln(E) means a uniform (undecided) router, 0 a one-hot one.</summary>
    private static Tensor Entropy(Tensor probs, Tensor? real)
    {
        using var _ = no_grad();
        var perToken = (probs * probs.clamp_min(1e-30f).log()).sum(dim: 1).neg();   // 0 log 0 = 0
        if (real is null) return perToken.mean();
        var realF = real.to(ScalarType.Float32);
        return (perToken * realF).sum() / realF.sum().clamp_min(1.0f);
    }

    /// <summary>Aux (load-balancing) and z losses over real tokens; both 0 when none is real.</summary>
    private static (Tensor Aux, Tensor Z) Losses(Tensor logits32, Tensor probs, Tensor first, Tensor? real, long e)
    {
        long s = logits32.shape[0];
        var lse = logits32.logsumexp(1);
        if (real is null)
        {
            var me = probs.mean(new long[] { 0 });
            var ce = first.bincount(null, e).to(ScalarType.Float32) / s;
            return ((me * ce).sum() * e, (lse * lse).mean());
        }

        var realF = real.to(ScalarType.Float32);
        var denom = realF.sum().clamp_min(1.0f);
        // dim: named, because a literal 0 binds to sum(ScalarType? type) and would sum as Byte.
        var meMasked = (probs * realF.unsqueeze(1)).sum(dim: 0) / denom;
        var ceMasked = zeros(e, ScalarType.Float32, logits32.device).index_add(0, first, realF, 1) / denom;
        return ((meMasked * ceMasked).sum() * e, (lse * lse * realF).sum() / denom);
    }

    private static MoeRoutingResult Empty(Tensor logits32, long e, int topK, long capacity)
    {
        var device = logits32.device;
        // Zero losses still connected to the logits, so the router gets a (zero) gradient rather than none.
        var zero = logits32.sum() * 0.0f;
        return new MoeRoutingResult
        {
            ExpertIndex = empty(0, ScalarType.Int64, device: device),
            TokenIndex = empty(0, ScalarType.Int64, device: device),
            Position = empty(0, ScalarType.Int64, device: device),
            Kept = empty(0, ScalarType.Bool, device: device),
            Gate = empty(0, ScalarType.Float32, device: device),
            AuxLoss = zero,
            ZLoss = zero.clone(),
            Entropy = zeros(1, ScalarType.Float32, device).squeeze(),
            TokensPerExpert = zeros(e, ScalarType.Int64, device),
            AssignedPerExpert = zeros(e, ScalarType.Int64, device),
            Capacity = capacity,
            TopK = topK,
        };
    }
}
