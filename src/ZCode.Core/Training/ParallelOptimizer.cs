using TorchSharp;
using TorchSharp.Modules;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Model;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// Gradient reduction, global-norm clipping and the AdamW step for any layout and ZeRO stage (DESIGN.md §7):
/// non-expert gradients are summed over the world, expert gradients over their expert-data-parallel group, in flat
/// buckets. Stage 0 keeps TorchSharp's AdamW with full state on every rank; stages 1 and 2 keep only this rank's
/// element-wise slice of the optimizer state (<see cref="ShardedAdamW"/>), stage 2 reduce-scatters the gradients
/// (and drops the full ones right after), and the updated slices are all-gathered into the parameters.
/// </summary>
public sealed class ParallelOptimizer : IDisposable
{
    /// <summary>Gradient bucket size (DeepSpeed's default reduce bucket is of this order).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    private readonly Seq2SeqTransformer model;
    private readonly ParallelLayout layout;
    private readonly List<Parameter> parameters;

    public ParallelOptimizer(Seq2SeqTransformer model, TrainConfig train, ParallelConfig parallel, ParallelLayout layout,
        Device device, long bucketBytes = DefaultBucketBytes)
    {
        this.model = model;
        this.layout = layout;
        Stage = parallel.ZeroStage;
        parameters = model.parameters().Where(p => p.requires_grad).ToList();
        var layers = CheckpointFormat.MoeLayers(model);
        var expertOf = layers.SelectMany(l => CheckpointFormat.ExpertParams.Select(p => ($"{l.Prefix}.{p}", l)))
            .ToDictionary(x => x.Item1, x => x.l, StringComparer.Ordinal);
        var dense = new List<(string, Parameter, bool, int)>();
        var experts = new List<(string, Parameter, bool, int)>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad) continue;
            bool decay = OptimizerFactory.Decays(name, p);
            if (expertOf.TryGetValue(name, out var layer))
                experts.Add((name, p, decay, layer.Layer.FirstExpert));
            else
                dense.Add((name, p, decay, -1));
        }
        long bucket = Math.Max(1, bucketBytes / 4);
        Dense = new GradientReducer(FlatPartition.Build(dense, layout.World.Size, layout.World.Rank, bucket), layout.World, device);
        Experts = new GradientReducer(FlatPartition.Build(experts, layout.ExpertDataGroup.Size, layout.ExpertDataGroup.Rank, bucket),
            layout.ExpertDataGroup, device);
        if (Stage == 0)
            Full = OptimizerFactory.Create(model, train);
        else
        {
            DenseShard = new ShardedAdamW(Dense.Partition, device, parallel.OffloadOptimizer, train.AdamBeta1, train.AdamBeta2, train.AdamEps, train.WeightDecay);
            ExpertShard = new ShardedAdamW(Experts.Partition, device, parallel.OffloadOptimizer, train.AdamBeta1, train.AdamBeta2, train.AdamEps, train.WeightDecay);
        }
    }

    public int Stage { get; }
    public ParallelLayout Layout => layout;
    /// <summary>Non-expert parameters, partitioned over the world.</summary>
    public GradientReducer Dense { get; }
    /// <summary>This rank's expert parameters, partitioned over the expert-data-parallel group.</summary>
    public GradientReducer Experts { get; }
    /// <summary>Stage 0: TorchSharp's AdamW over all parameters.</summary>
    public AdamW? Full { get; }
    public ShardedAdamW? DenseShard { get; }
    public ShardedAdamW? ExpertShard { get; }

    private long? stateBytes;

    /// <summary>Bytes of optimizer state held by this rank (AdamW moments; plus master weights when offloaded).</summary>
    public long StateBytes => stateBytes ??= Full is not null
        ? OptimizerStates.ByName(Full, model).Values.Sum(s => (s.exp_avg.numel() + s.exp_avg_sq.numel()) * s.exp_avg.ElementSize)
        : DenseShard!.StateBytes + ExpertShard!.StateBytes;

    public void ZeroGrad()
    {
        if (Full is not null) Full.zero_grad();
        else model.zero_grad();
    }

    /// <summary>Reduces the accumulated gradients, clips them to <paramref name="clipNorm"/> (0 = off) by the global
    /// norm, and applies one AdamW step at <paramref name="lr"/>. Returns the global gradient norm before clipping as
    /// an fp32 scalar on the parameters' device (in the caller's dispose scope): the norm, the clipping coefficient and
    /// the update stay on the device, so a step reads nothing back (the trainer reads the norm at log steps).</summary>
    public Tensor Step(double lr, double clipNorm)
    {
        if (Full is not null)
            return StepFull(lr, clipNorm);

        Dense.ReduceToShard(DenseShard!.Grad, reduceScatter: Stage == 2);
        Experts.ReduceToShard(ExpertShard!.Grad, reduceScatter: Stage == 2);
        model.zero_grad(); // the full gradients are not needed any more: free them (set to none)
        var square = DenseShard.GradSquareSum() + ExpertShard.GradSquareSum();
        if (layout.World.Size > 1) layout.World.AllReduce(square);
        var norm = square.sqrt();
        if (clipNorm > 0)
        {
            using var _ = no_grad();
            var coef = Coefficient(norm, clipNorm);
            DenseShard.Grad.mul_(coef.to_type(DenseShard.Grad.dtype));
            ExpertShard.Grad.mul_(coef.to_type(ExpertShard.Grad.dtype));
        }
        Dense.AllGatherParameters(DenseShard.Update(lr));
        Experts.AllGatherParameters(ExpertShard.Update(lr));
        return norm.to_type(ScalarType.Float32);
    }

    private Tensor StepFull(double lr, double clipNorm)
    {
        Dense.AllReduceGradients();
        Experts.AllReduceGradients();
        // One process computes the norm exactly as N ranks do (float64 square sums, one coefficient), not with
        // clip_grad_norm_'s fp32 arithmetic: a last-bit difference in the clip coefficient grows over a few dozen
        // steps (routing decisions flip) until N ranks no longer match one process within 1e-5 (measured: 5.7e-5
        // relative at step 29 of m3-tiny before this).
        // Non-expert gradients are whole and equal on every rank; expert gradients differ across an expert group
        // (different experts), so their squares are summed over it: every element counted once.
        var experts = SquareSum(Experts.Partition.Slots);
        if (layout.ExpertGroup.Size > 1) layout.ExpertGroup.AllReduce(experts);
        var norm = (SquareSum(Dense.Partition.Slots) + experts).sqrt();
        if (clipNorm > 0)
        {
            using var _ = no_grad();
            var coef = Coefficient(norm, clipNorm);
            foreach (var p in parameters)
            {
                using var g = p.grad;
                g?.mul_(coef.to_type(g.dtype));
            }
        }
        norm = norm.to_type(ScalarType.Float32);
        OptimizerFactory.SetLearningRate(Full!, lr);
        Full!.step();
        return norm;
    }

    /// <summary>torch's clip_grad_norm_ coefficient max / (norm + 1e-6), capped at 1 (multiplying by 1 is exact, so
    /// a norm under the limit leaves the gradients unchanged).</summary>
    private static Tensor Coefficient(Tensor norm, double maxNorm) => ((norm + 1e-6).reciprocal() * maxNorm).clamp_max(1.0);

    /// <summary>Sum of squares of the slots' gradients: a float64 scalar on the parameters' device (caller's scope).</summary>
    private Tensor SquareSum(IEnumerable<FlatSlot> slots)
    {
        var sum = zeros(Array.Empty<long>(), ScalarType.Float64, parameters.Count > 0 ? parameters[0].device : CPU);
        foreach (var s in slots)
        {
            using var g = s.Param.grad;
            if (g is not null) sum.add_(g.to(ScalarType.Float64).square().sum());
        }
        return sum;
    }

    public void Dispose()
    {
        Dense.Dispose();
        Experts.Dispose();
        DenseShard?.Dispose();
        ExpertShard?.Dispose();
        Full?.Dispose();
    }
}
