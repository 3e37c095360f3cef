using ZCode.Config;
using ZCode.Model;
using ZCode.Runtime;

namespace ZCode.Parallel;

/// <summary>Bytes one device holds for one layout choice (see <see cref="MemoryPlan"/> for the formulas).</summary>
public sealed record MemoryEstimate(int ZeroStage, bool OffloadOptimizer, int ExpertParallel,
    long Parameters, long ComputeWeights, long Gradients, long OptimizerState, long Activations, long Reserve, long HostOptimizer)
{
    /// <summary>Everything on the device.</summary>
    public long Total => Parameters + ComputeWeights + Gradients + OptimizerState + Activations + Reserve;
}

/// <summary>Resident memory of a one-process CPU run (see <see cref="MemoryPlan.Host"/>).</summary>
public sealed record HostMemoryEstimate(int ComputeBytes, long Parameters, long ComputeWeights, long Gradients,
    long OptimizerState, long Ema, long Activations, long Runtime)
{
    /// <summary>Everything in the process.</summary>
    public long Total => Parameters + ComputeWeights + Gradients + OptimizerState + Ema + Activations + Runtime;
}

/// <summary>The inputs of the estimate that do not depend on the layout choice.</summary>
/// <param name="Gpus">Devices N (the world: data-parallel x expert-parallel).</param>
/// <param name="MicroBatchTokens">T = train.tokens_per_batch / (train.grad_accumulation * N): padded positions per
/// side (source and target) one device holds in one forward.</param>
/// <param name="ActivationElementsPerToken">Stored compute-dtype elements per token position, all layers.</param>
/// <param name="ActivationFp32BytesPerToken">fp32 bytes per token position: router logits and probabilities, output logits.</param>
public sealed record MemoryPlanInputs(int Gpus, long MicroBatchTokens, int ComputeBytes, long ActivationElementsPerToken,
    long ActivationFp32BytesPerToken);

/// <summary>
/// `zcode plan --gpus N --gpu-memory G`: per-device memory of every layout choice (zero_stage 0/1/2 x offload_optimizer
/// x expert_parallel), which fit, and a recommendation. Parameter counts are <see cref="ParameterCount"/>'s.
/// <para>Notation: Phi_s non-expert parameters (routers included, replicated), Phi_e all expert parameters, P
/// expert_parallel (divides the experts and N), Phi_d = Phi_s + Phi_e / P the parameters a device holds,
/// Phi = Phi_s + Phi_e. ZeRO partitions non-expert state over all N ranks and expert state over the N/P ranks holding the
/// same experts, so a device's share of partitioned state is Phi_s/N + (Phi_e/P)/(N/P) = Phi/N elements.</para>
/// <list type="bullet">
/// <item>parameters: 4 Phi_d (zcode's modules keep fp32 parameters on the device; they are the master weights).</item>
/// <item>compute weights: 2 Phi_d with train.dtype bf16 or auto (GPUs of the plan are taken to compute bf16 fast; the per-op bf16 casts are saved for backward), 0 for fp32.</item>
/// <item>gradients (fp32): 4 Phi_d for stages 0 and 1; 4 Phi/N for stage 2 (assumes gradients are reduce-scattered
/// bucket by bucket as backward produces them, as DeepSpeed does; buckets are not counted).</item>
/// <item>optimizer state: stage 0 8 Phi_d (AdamW exp_avg, exp_avg_sq); stages 1/2 12 Phi/N (fp32 master slice and both
/// moments, as ZeRO); with offload_optimizer 0 on the device and 16 Phi/N in host memory per rank (the same 12 plus a
/// host copy of the gradient slice). Offload needs stage 1 or 2.</item>
/// <item>activations: T * (A * b + A32), b = 2 (bfloat16) or 4 bytes, with per-token elements A = the sum over layers of
/// self-attention 8d + h*L (LayerNorm in/out, Q, K, V, context, projection, residual/dropout; h*L attention
/// probabilities, L = data.max_len, as the math attention kernel keeps them), cross-attention 8d + h*L (decoder),
/// dense FFN 3d + 2f, MoE FFN 3d + k*cf*(2d + 2f) (the [E, C, d] dispatch and output buffers and the [E, C, f]
/// hidden before/after ReLU, C = k*cf*T/E; E*T buffer rows instead of k*cf*T when capacity_factor is 0), plus 2d per
/// side for embeddings; A32 = 8E per MoE layer (fp32 router logits and probabilities) + 8V (fp32 logits and their
/// gradient, target side). Upper bound: every position real, no activation checkpointing.</item>
/// <item>reserve: 1 GiB per device for the CUDA context, library workspaces and allocator slack.</item>
/// </list>
/// A choice fits when the total is at most G GiB. The recommendation is the fitting choice with the least
/// communication and host work: offload off before on (host transfers and a CPU optimizer cost most), then the lowest
/// ZeRO stage, then the smallest expert-parallel size (fewest ranks in each all-to-all).
/// </summary>
public static class MemoryPlan
{
    public const long GiB = 1L << 30;
    public const long ReserveBytes = GiB;

    /// <summary>
    /// The process itself before any model: .NET, LibTorch, the tokenizer and mapped shards (measured 315 MiB peak for a
    /// one-token-step `zcode bench train` of m3-tiny on Linux x64 with tcmalloc, rounded up).
    /// </summary>
    public const long HostRuntimeBytes = 384L << 20;

    /// <summary>
    /// One process training on the CPU (<c>zcode train</c> without a launcher): fp32 parameters, gradients and AdamW
    /// moments (4 + 4 + 8 bytes per parameter), the EMA copy with <c>train.ema_decay</c> (4), bf16 compute copies (2,
    /// when <paramref name="computeBytes"/> is 2), the activation bound of <see cref="Inputs"/> for one device, and
    /// <see cref="HostRuntimeBytes"/>. What the allocator keeps cached for varying batch shapes comes on top
    /// (bench/RESULTS.md, "Memory", compares the estimate with measured peaks).
    /// </summary>
    public static HostMemoryEstimate Host(ZCodeConfig cfg, int computeBytes)
    {
        var c = ParameterCount.Of(cfg.Model);
        var inputs = Inputs(cfg, 1);
        long phi = c.NonExpert + c.Expert;
        long activations = inputs.MicroBatchTokens * (inputs.ActivationElementsPerToken * computeBytes + inputs.ActivationFp32BytesPerToken);
        return new HostMemoryEstimate(computeBytes, 4 * phi, computeBytes == 2 ? 2 * phi : 0, 4 * phi, 8 * phi,
            cfg.Train.EmaDecay > 0 ? 4 * phi : 0, activations, HostRuntimeBytes);
    }

    /// <summary>Layout-independent inputs for <paramref name="gpus"/> devices.</summary>
    public static MemoryPlanInputs Inputs(ZCodeConfig cfg, int gpus)
    {
        if (gpus < 1) throw new ArgumentOutOfRangeException(nameof(gpus), gpus, "must be >= 1");
        var m = cfg.Model;
        long d = m.DModel, f = m.FfnDim, h = m.Heads, len = cfg.Data.MaxLen, e = m.Moe.Experts;
        double kcf = m.Moe.CapacityFactor > 0 ? Math.Min(m.Moe.TopK, e) * m.Moe.CapacityFactor : e;
        long attention = 8 * d + h * len;
        long dense = 3 * d + 2 * f;
        long moe = 3 * d + (long)Math.Ceiling(kcf * (2 * d + 2 * f));
        int encMoe = MoeLayout.CountMoeLayers(m.Moe, m.EncoderLayers), decMoe = MoeLayout.CountMoeLayers(m.Moe, m.DecoderLayers);
        long encoder = m.EncoderLayers * attention + (m.EncoderLayers - encMoe) * dense + encMoe * moe;
        long decoder = m.DecoderLayers * 2 * attention + (m.DecoderLayers - decMoe) * dense + decMoe * moe;
        long elements = encoder + decoder + 2 * 2 * d;
        long fp32 = (encMoe + decMoe) * 8 * e + 8L * m.VocabSize;
        long tokens = cfg.Train.TokensPerBatch / ((long)Math.Max(1, cfg.Train.GradAccumulation) * gpus);
        return new MemoryPlanInputs(gpus, tokens, ComputeDevice.IsBf16WhereFast(cfg.Train.Dtype) ? 2 : 4, elements, fp32);
    }

    /// <summary>Expert-parallel sizes to consider: divisors of the expert count that also divide N (1 for a dense model).</summary>
    public static IReadOnlyList<int> ExpertParallelChoices(ModelConfig m, int gpus)
    {
        int e = MoeLayout.CountMoeLayers(m.Moe, m.EncoderLayers) + MoeLayout.CountMoeLayers(m.Moe, m.DecoderLayers) > 0 ? m.Moe.Experts : 1;
        return Enumerable.Range(1, Math.Min(e, gpus)).Where(p => e % p == 0 && gpus % p == 0).ToList();
    }

    /// <summary>One layout choice.</summary>
    public static MemoryEstimate Estimate(ParameterCount c, MemoryPlanInputs inputs, int zeroStage, bool offload, int expertParallel)
    {
        if (zeroStage is < 0 or > 2) throw new ArgumentOutOfRangeException(nameof(zeroStage), zeroStage, "must be 0, 1 or 2");
        if (offload && zeroStage == 0) throw new ArgumentException("offload_optimizer needs zero_stage 1 or 2", nameof(offload));
        int n = inputs.Gpus;
        if (expertParallel < 1 || n % expertParallel != 0)
            throw new ArgumentOutOfRangeException(nameof(expertParallel), expertParallel, $"must divide the {n} devices");
        double perDevice = c.NonExpert + (double)c.Expert / expertParallel;   // Phi_d
        double shard = (double)(c.NonExpert + c.Expert) / n;                   // Phi / N
        long Bytes(double v) => (long)Math.Ceiling(v);
        long parameters = Bytes(4 * perDevice);
        long compute = inputs.ComputeBytes == 2 ? Bytes(2 * perDevice) : 0;
        long gradients = Bytes(zeroStage == 2 ? 4 * shard : 4 * perDevice);
        long optimizer = zeroStage == 0 ? Bytes(8 * perDevice) : offload ? 0 : Bytes(12 * shard);
        long host = offload ? Bytes(16 * shard) : 0;
        long activations = inputs.MicroBatchTokens * (inputs.ActivationElementsPerToken * inputs.ComputeBytes + inputs.ActivationFp32BytesPerToken);
        return new MemoryEstimate(zeroStage, offload, expertParallel, parameters, compute, gradients, optimizer, activations, ReserveBytes, host);
    }

    /// <summary>Every choice in recommendation order (offload, then ZeRO stage, then expert-parallel size ascending).</summary>
    public static IReadOnlyList<MemoryEstimate> All(ZCodeConfig cfg, int gpus)
    {
        var c = ParameterCount.Of(cfg.Model);
        var inputs = Inputs(cfg, gpus);
        var list = new List<MemoryEstimate>();
        foreach (bool offload in new[] { false, true })
            foreach (int stage in new[] { 0, 1, 2 })
                if (!(offload && stage == 0))
                    foreach (int p in ExpertParallelChoices(cfg.Model, gpus))
                        list.Add(Estimate(c, inputs, stage, offload, p));
        return list;
    }

    /// <summary>The first choice of <see cref="All"/> whose total fits <paramref name="gpuMemoryGiB"/>, or null.</summary>
    public static MemoryEstimate? Recommend(IReadOnlyList<MemoryEstimate> choices, double gpuMemoryGiB)
        => choices.FirstOrDefault(x => Fits(x, gpuMemoryGiB));

    public static bool Fits(MemoryEstimate x, double gpuMemoryGiB) => x.Total <= gpuMemoryGiB * GiB;
}
