using TorchSharp;
using TorchSharp.Modules;
using ZCode.Config;
using ZCode.Parallel;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ZCode.Model.Moe;

/// <summary>
/// Mixture-of-Experts FFN: an fp32 router, <see cref="MoeRouting"/> for top-k routing with
/// capacity, index-based dispatch into an [E, C, d] buffer, all experts as two batched matmuls over stacked
/// weights, and an index_add combine. Dropped or masked tokens get an output of exactly zero.
/// <para>Parameters: <c>router.weight</c> [E, d] (no bias, fp32 compute), <c>w1</c> [E, d, ffn], <c>b1</c> [E, ffn],
/// <c>w2</c> [E, ffn, d], <c>b2</c> [E, d]. Init: each expert like nn.Linear's weight (kaiming-uniform with
/// a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = d for w1 and ffn for w2), biases zero;
/// the router is TorchSharp's default Linear init. Init draws from torch's global generator.</para>
/// <para>Expert parallelism: with an <see cref="ExpertParallelGroup"/> of size P, this rank holds the
/// E/P experts [<see cref="FirstExpert"/>, FirstExpert + <see cref="LocalExperts"/>) in its stacked weights (index j =
/// global expert FirstExpert + j); the router stays full-size. Routing, capacity, losses and statistics are computed on
/// this rank's tokens with global expert ids; the [E, C, d] dispatch buffer goes through an all-to-all so each rank
/// runs its experts on [E/P, P*C, d], and comes back through the reverse all-to-all. Ranks may route different token
/// counts, so C is the group's largest capacity (one all-reduce per forward) while each rank drops by its own
/// capacity: the result equals an unsplit layer run on each rank's tokens. Every rank of the group must run every
/// forward and backward of the layer together. Initial weights equal the corresponding slice of an unsplit layer's
/// (the full stack is drawn, then sliced), so a run starts from the same model at every expert-parallel size.</para>
/// <para>Randomness (training only): Random Token Selection, <c>noisy_gate</c> (jitter, Gumbel RSample) and the
/// optional second-expert Gumbel noise draw from <see cref="Generator"/>, or a layer-owned generator seeded with <see cref="Seed"/>.
/// Evaluation is deterministic: no jitter, no Gumbel, and <c>random</c> priority becomes <c>order</c>
/// (DeepSpeed keeps RTS in eval; evaluation here must be deterministic).</para>
/// <para>Capacity counts real tokens only (S = unmasked tokens of this forward): masked tokens take no capacity.
/// DeepSpeed counts all rows, padding included; without a mask the two agree.</para>
/// </summary>
public sealed partial class MoeLayer : Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear router;
    private Parameter w1;
    private Parameter b1;
    private Parameter w2;
    private Parameter b2;

    private readonly int topK;
    private readonly double capacityFactor;
    private readonly double evalCapacityFactor;
    private readonly int minCapacity;
    private readonly TokenPriority trainPriority;
    private readonly double jitter;
    private readonly NoisyGate noisyGate;
    private readonly double expertDropout;

    private long seed;
    private Generator? ownGenerator;
    private MoeExecution execution;
    private readonly ExpertParallelGroup? expertGroup;

    /// <param name="name">Module name.</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="ffnDim">Hidden width of each expert.</param>
    /// <param name="cfg">MoE settings (experts, top_k, capacities, priority, jitter, expert dropout) within the ranges
    /// ConfigValidator enforces (the bench commands check their own options the same way).</param>
    /// <param name="activationDropout">Dropout on the experts' hidden activations; the layer uses
    /// max(activationDropout, cfg.ExpertDropout) (Switch-style expert dropout raises it inside experts).</param>
    /// <param name="expertGroup">Expert-parallel group whose ranks split the experts; null (or size 1) holds all.</param>
    public MoeLayer(string name, int dModel, int ffnDim, MoeConfig cfg, double activationDropout = 0.0,
        ExpertParallelGroup? expertGroup = null) : base(name)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        double dropout = Math.Max(activationDropout, cfg.ExpertDropout);

        Experts = cfg.Experts;
        this.expertGroup = expertGroup is { Size: > 1 } ? expertGroup : null;
        LocalExperts = this.expertGroup?.LocalExperts(Experts) ?? Experts;
        FirstExpert = this.expertGroup?.FirstExpert(Experts) ?? 0;
        DModel = dModel;
        FfnDim = ffnDim;
        topK = cfg.TopK;
        capacityFactor = cfg.CapacityFactor;
        evalCapacityFactor = cfg.EvalCapacityFactor;
        minCapacity = cfg.MinCapacity;
        trainPriority = TokenPriorityNames.Parse(cfg.TokenPriority);
        jitter = cfg.Jitter;
        noisyGate = NoisyGateNames.Parse(cfg.NoisyGate);
        expertDropout = dropout;
        seed = StableSeed(name);
        execution = this.expertGroup is null ? MoeExecution.Packed : MoeExecution.Padded;

        router = Linear(dModel, cfg.Experts, hasBias: false, dtype: ScalarType.Float32);
        double bound1 = 1.0 / Math.Sqrt(dModel);
        double bound2 = 1.0 / Math.Sqrt(ffnDim);
        using (no_grad())
        {
            w1 = new Parameter(LocalSlice(empty(new long[] { Experts, dModel, ffnDim }).uniform_(-bound1, bound1)));
            b1 = new Parameter(zeros(LocalExperts, ffnDim));
            w2 = new Parameter(LocalSlice(empty(new long[] { Experts, ffnDim, dModel }).uniform_(-bound2, bound2)));
            b2 = new Parameter(zeros(LocalExperts, dModel));
        }
        register_module("router", router);
        register_parameter("w1", w1);
        register_parameter("b1", b1);
        register_parameter("w2", w2);
        register_parameter("b2", b2);
    }

    /// <summary>Number of experts E (global: the router's outputs, routing and statistics use these ids).</summary>
    public int Experts { get; }

    /// <summary>Experts held by this rank: E/P under expert parallelism, otherwise E. The stacked expert
    /// parameters have this leading dimension.</summary>
    public int LocalExperts { get; }

    /// <summary>Global id of local expert 0 (0 without expert parallelism).</summary>
    public int FirstExpert { get; }

    /// <summary>The stacked expert parameters (w1, b1, w2, b2) with their names in this module: the parameters that
    /// differ between expert-parallel ranks. Everything else, the router included, is replicated.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> ExpertParameters => [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)];

    /// <summary>Model width d.</summary>
    public int DModel { get; }

    /// <summary>Hidden width of each expert.</summary>
    public int FfnDim { get; }

    /// <summary>Choices per token k.</summary>
    public int TopK => topK;

    /// <summary>The router (Linear d -> E, no bias); its weight is used in fp32.</summary>
    public Linear Router => router;

    /// <summary>Random source for RTS, jitter and Gumbel noise in training; null uses a layer-owned
    /// generator seeded from <see cref="Seed"/> on the input's device.</summary>
    public Generator? Generator { get; set; }

    /// <summary>Seed of the layer-owned generator; setting it restarts that generator's stream. Defaults to a
    /// stable hash of the module name, so differently named layers do not draw identical noise; the model
    /// should set it from <c>train.seed</c> (or share one <see cref="Generator"/>) for reproducible runs.</summary>
    public long Seed
    {
        get => seed;
        set
        {
            seed = value;
            ownGenerator?.Dispose();
            ownGenerator = null;
        }
    }

    /// <summary>How the experts run (<see cref="MoeExecutionPath.For"/> picks it for a device): packed by default for a
    /// layer holding all its experts, padded under expert parallelism, which cannot run packed.</summary>
    public MoeExecution Execution
    {
        get => execution;
        set
        {
            if (value == MoeExecution.Packed && expertGroup is not null)
                throw new ArgumentException("the packed expert path needs all experts on this rank; expert parallelism runs padded", nameof(value));
            execution = value;
        }
    }

    /// <summary>Add Gumbel noise to the logits when choosing the second (and later) expert, training only.
    /// DeepSpeed does this by default (<c>top2_2nd_expert_sampling</c>); off here by default.</summary>
    public bool SecondExpertGumbel { get; set; }

    /// <summary>Priority used in evaluation: <c>order</c> when training uses <c>random</c>, otherwise the same.</summary>
    public TokenPriority EvalPriority => trainPriority == TokenPriority.Random ? TokenPriority.Order : trainPriority;

    /// <summary>Unweighted load-balancing loss of the last forward (fp32 scalar, in the caller's dispose scope).</summary>
    public Tensor? AuxLoss => LastRouting?.AuxLoss;

    /// <summary>Router z-loss of the last forward (fp32 scalar, in the caller's dispose scope).</summary>
    public Tensor? ZLoss => LastRouting?.ZLoss;

    /// <summary>Routing statistics of the last forward, read from the device on first access (call it before the
    /// forward's dispose scope ends; the returned record itself is managed and can be kept).</summary>
    public MoeStats? LastStats => LastRouting is { } r
        ? new MoeStats(r.TokensPerExpertCounts, r.RoutedTokens, r.Dropped,
            r.RoutedTokens == 0 ? 0.0 : (double)r.Dropped / (r.RoutedTokens * topK))
        : null;

    /// <summary>Capacity C used by the last forward.</summary>
    public long LastCapacity => LastRouting?.Capacity ?? 0;

    /// <summary>Router entropy of the last forward (scalar fp32, detached, in the caller's dispose scope).</summary>
    public Tensor? RouterEntropy => LastRouting?.Entropy;

    /// <summary>Routing of the last forward (tensors in the caller's dispose scope: read them before it ends),
    /// and the leading shape of its input ([B, L] for a batch of sequences), for per-row statistics.</summary>
    public MoeRoutingResult? LastRouting { get; private set; }

    /// <summary>Leading shape of the last forward's input (all dimensions but d).</summary>
    public long[] LastInputShape { get; private set; } = [];

    /// <summary>Real (unmasked) tokens of the next forward when the caller knows it on the host (the trainer does:
    /// it built the batch); null reads the count from the mask, a host synchronisation. A wrong value changes the
    /// capacity, so set it only from the batch that is being forwarded (see <see cref="Seq2SeqTransformer.Forward"/>).</summary>
    public long? RealTokensHint { get; set; }

    /// <summary>Router noise in training (from <c>noisy_gate</c>).</summary>
    public NoisyGate NoisyGate => noisyGate;

    /// <param name="x">[..., d] input (fp32 or bf16; experts compute in x's dtype).</param>
    /// <param name="tokenMask">Bool mask with x's leading shape (true = real token), or null.</param>
    /// <returns>Tensor shaped like x.</returns>
    public override Tensor forward(Tensor x, Tensor? tokenMask)
    {
        long d = x.shape[^1];
        if (d != DModel) throw new ArgumentException($"expected last dimension {DModel}, got {d}", nameof(x));
        long s = x.numel() / d;
        var x2 = x.reshape(s, d);
        var mask = MoeRouting.NormaliseMask(tokenMask, s);
        LastInputShape = x.shape[..^1];

        MoeRoutingResult r;
        using (ZCode.Runtime.StepProfile.Measure("moe router"))
            r = RouteTokens(x2, mask);
        // Buffer capacity: the group's largest, so every rank sends equal blocks; each rank dropped by its own.
        long stride = expertGroup is null ? r.Capacity : (long)HostCollectives.AllReduceMax(expertGroup.Comm, [r.Capacity])[0];
        if (stride == 0 || (expertGroup is null && s == 0)) return zeros_like(x);
        if (execution == MoeExecution.Packed) return RunExperts(x2, r).view(x.shape);

        MoeDispatchPlan plan;
        Tensor dispatched, expertOut;
        using (ZCode.Runtime.StepProfile.Measure("moe dispatch/combine"))
        {
            plan = MoeDispatchPlan.From(r, stride);
            dispatched = Dispatch(x2, plan, stride);
        }
        using (ZCode.Runtime.StepProfile.Measure("moe experts"))
            expertOut = ExchangeAndRunExperts(dispatched, r.Capacity);
        using var combine = ZCode.Runtime.StepProfile.Measure("moe dispatch/combine");
        return Combine(expertOut, plan, s).view(x.shape);
    }

    /// <summary>
    /// The experts on an [E, C, d] dispatch buffer in global expert order, [E, C, d] out. Without expert parallelism
    /// this is <see cref="ExpertForward"/>. With P ranks: all-to-all (rank q receives every rank's [E/P, C, d] block for
    /// its experts), experts on [E/P, P*C, d], reverse all-to-all. Both exchanges are differentiable.
    /// <para>Expert dropout under expert parallelism: each rank draws the mask of its own tokens where an unsplit layer
    /// would ([E, own capacity, ffn], from its own generator at the same point of its forward) and sends it with them,
    /// so the owner of an expert never draws for another rank's tokens and a rank's random stream is the one a single
    /// process running its micro-batch has: data-parallel runs stay equal to one process, dropout included.</para>
    /// </summary>
    /// <param name="dispatched">[E, C, d] buffer (C may be the group's largest capacity).</param>
    /// <param name="ownCapacity">This rank's own capacity (the rows a single process would have); default C.</param>
    public Tensor ExchangeAndRunExperts(Tensor dispatched, long ownCapacity = -1)
    {
        if (expertGroup is null) return ExpertForward(dispatched);
        long p = expertGroup.Size, el = LocalExperts, c = dispatched.shape[1], d = dispatched.shape[2];
        Tensor? noise = null;
        if (training && expertDropout > 0)
        {
            long own = ownCapacity < 0 ? c : ownCapacity;
            var mine = DropoutNoise(new[] { Experts, own, (long)FfnDim }, dispatched.dtype, dispatched.device);
            if (own < c) mine = functional.pad(mine, new long[] { 0, 0, 0, c - own });
            var got = empty_like(mine);
            expertGroup.Comm.AllToAll(mine.contiguous(), got);
            noise = got.view(p, el, c, FfnDim).transpose(0, 1).reshape(el, p * c, FfnDim);
        }
        var received = DifferentiableAllToAll.Apply(dispatched.contiguous(), expertGroup.Comm);   // [P, E/P, C, d]: source rank first
        var local = received.view(p, el, c, d).transpose(0, 1).reshape(el, p * c, d);
        var output = ExpertForward(local, noise);
        var back = output.view(el, p, c, d).transpose(0, 1).reshape(p * el, c, d);                // contiguous, destination rank first
        return DifferentiableAllToAll.Apply(back, expertGroup.Comm);
    }

    /// <summary>Router (fp32, with training noise) and <see cref="MoeRouting.Route"/>; records losses and statistics.</summary>
    /// <param name="x2">[S, d] tokens.</param>
    /// <param name="mask">[S] bool (true = real), or null.</param>
    public MoeRoutingResult RouteTokens(Tensor x2, Tensor? mask)
    {
        bool train = training;
        var device = x2.device;
        Generator? gen = train && NeedsRandomness() ? GeneratorFor(device) : null;

        var routerIn = x2.to(ScalarType.Float32);
        if (train && noisyGate == NoisyGate.Jitter && jitter > 0)
        {
            var noise = rand(routerIn.shape, ScalarType.Float32, device, generator: gen);
            routerIn = routerIn * (noise * (2 * jitter) + (1 - jitter));
        }
        var routerWeight = router.weight!;
        var logits = functional.linear(routerIn,
            routerWeight.dtype == ScalarType.Float32 ? routerWeight : routerWeight.to(ScalarType.Float32));

        long s = x2.shape[0];
        // The capacity must be known on the host (it sizes the dispatch buffer): a caller that knows the real-token
        // count passes it (RealTokensHint), otherwise it is read back from the device.
        long realTokens = mask is null ? s : RealTokensHint ?? ZCode.Runtime.HostTransfers.Item<long>(mask.sum());
        long capacity = MoeRouting.Capacity(realTokens, Experts, topK, train ? capacityFactor : evalCapacityFactor, minCapacity);
        bool rsample = train && noisyGate == NoisyGate.RSample;
        var r = MoeRouting.Route(logits, mask, topK, capacity, train ? trainPriority : EvalPriority, gen,
            secondChoiceGumbel: train && (SecondExpertGumbel || (rsample && topK > 1)),
            firstChoiceGumbel: rsample && topK == 1);

        LastRouting = r;
        return r;
    }

    /// <summary>Gathers kept tokens into a zero-padded [E, C, d] buffer (row expert*C + position; positions are
    /// unique per expert, so a plain copy suffices; slots that are not kept land in a spare last row, cut off here).
    /// Memory O(E*C*d), no [S, E, C] tensor. <paramref name="capacity"/> is the plan's row stride (at least the
    /// routing's capacity).</summary>
    public Tensor Dispatch(Tensor x2, MoeDispatchPlan plan, long capacity)
    {
        long d = x2.shape[1];
        long rows = Experts * capacity;
        return zeros(new long[] { rows + 1, d }, x2.dtype, x2.device)
            .index_copy(0, plan.Rows, x2.index_select(0, plan.Tokens))
            .narrow(0, 0, rows)
            .view(Experts, capacity, d);
    }

    /// <summary>
    /// This rank's experts on their tokens: [E_local, C, d] in, [E_local, C, d] out (E_local = <see cref="LocalExperts"/>),
    /// relu(x @ w1 + b1) (with expert dropout) @ w2 + b2 as two batched matmuls over the stacked weights, in the
    /// buffer's dtype. Empty (zero) rows are computed too; <see cref="Combine"/> never reads them.
    /// </summary>
    /// <param name="dispatched">[E_local, C, d] buffer.</param>
    /// <param name="dropoutNoise">Expert-dropout multiplier for the hidden activations [E_local, C, ffn] drawn by the
    /// tokens' own ranks (expert parallelism); null draws it here.</param>
    public Tensor ExpertForward(Tensor dispatched, Tensor? dropoutNoise = null)
    {
        if (dispatched.dim() != 3 || dispatched.shape[0] != LocalExperts || dispatched.shape[2] != DModel)
            throw new ArgumentException($"expected [{LocalExperts}, C, {DModel}], got [{string.Join(", ", dispatched.shape)}]", nameof(dispatched));
        var dtype = dispatched.dtype;
        // bmm + add_ rather than baddbmm: TorchSharp 0.107's Tensor.baddbmm passes its operands to the native
        // call in the wrong order (it computes batch2 + self @ batch1).
        var hidden = bmm(dispatched, Cast(w1, dtype)).add_(Cast(b1, dtype).unsqueeze(1));
        hidden = functional.relu(hidden);
        if (training && expertDropout > 0) hidden = hidden * (dropoutNoise ?? DropoutNoise(hidden.shape, hidden.dtype, hidden.device));
        return bmm(hidden, Cast(w2, dtype)).add_(Cast(b2, dtype).unsqueeze(1));
    }

    /// <summary>Inverted-dropout multiplier (keep with probability 1 - p, scaled by 1 / (1 - p)) keyed by torch's
    /// global generator (<see cref="CounterDropout.Multipliers"/>); explicit so a mask can be drawn on one rank and used
    /// on another.</summary>
    private Tensor DropoutNoise(long[] shape, ScalarType dtype, Device device)
        => CounterDropout.Multipliers(shape, expertDropout, dtype, device);

    /// <summary>Weighted expert outputs added back to their tokens: [S, d]; rows of dropped or masked tokens stay
    /// exactly zero.</summary>
    public Tensor Combine(Tensor expertOut, MoeDispatchPlan plan, long tokens)
    {
        long d = expertOut.shape[^1];
        var flat = expertOut.reshape(-1, d);
        // Slots that were not kept point at the spare row E*C; any real row stands in for it, since their weight is 0.
        var rows = plan.Rows.clamp_max(flat.shape[0] - 1);
        var weighted = flat.index_select(0, rows) * plan.Gates.to(flat.dtype).unsqueeze(1);
        return zeros(new long[] { tokens, d }, flat.dtype, flat.device).index_add(0, plan.Tokens, weighted, 1);
    }

    /// <summary>This rank's experts of a freshly drawn [E, ...] stack (the whole stack without expert parallelism).</summary>
    private Tensor LocalSlice(Tensor full)
    {
        if (LocalExperts == Experts) return full;
        using (full)
            return full.narrow(0, FirstExpert, LocalExperts).clone();
    }

    private static Tensor Cast(Tensor t, ScalarType dtype) => t.dtype == dtype ? t : t.to(dtype);

    private bool NeedsRandomness() => trainPriority == TokenPriority.Random || noisyGate != NoisyGate.None || SecondExpertGumbel;

    /// <summary>FNV-1a of the name: deterministic across processes, unlike string.GetHashCode.</summary>
    private static long StableSeed(string name)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in name)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        return (long)(h & long.MaxValue);
    }

    private Generator GeneratorFor(Device device)
    {
        if (Generator is not null) return Generator;
        if (ownGenerator is null || ownGenerator.device.type != device.type || ownGenerator.device.index != device.index)
        {
            ownGenerator?.Dispose();
            ownGenerator = new Generator(unchecked((ulong)seed), device);
        }
        return ownGenerator;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ownGenerator?.Dispose();
            ownGenerator = null;
        }
        base.Dispose(disposing);
    }
}
