using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Model;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Training.Optimization;

/// <summary>
/// AdamW (decoupled weight decay on weight matrices only) for any layout and ZeRO stage: non-expert gradients are
/// summed over the world, expert gradients over their expert-data-parallel group, in flat buckets. Stage 0 keeps
/// TorchSharp's AdamW with the full state on every rank; stages 1 and 2 keep only this rank's element-wise slice of the
/// state (<see cref="ShardedAdamW"/>), stage 2 reduce-scatters the gradients (and drops the full ones right after), and
/// the updated slices are all-gathered into the parameters. The saved state is addressed by parameter name and global
/// expert id, so any layout restores it.
/// </summary>
public sealed class AdamWOptimizer : ITrainingOptimizer
{
    /// <summary>Gradient bucket size (DeepSpeed's default reduce bucket is of this order).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    private readonly Seq2SeqTransformer model;
    private readonly ParallelLayout layout;
    private readonly List<Parameter> parameters;
    private readonly GradientReducer dense;
    private readonly GradientReducer experts;
    private readonly AdamW? full;
    private readonly ShardedAdamW? denseShard;
    private readonly ShardedAdamW? expertShard;
    private long? stateBytes;

    /// <param name="model">The model, already on its device: the state is created next to its parameters.</param>
    public AdamWOptimizer(Seq2SeqTransformer model, TrainConfig train, ParallelConfig parallel, ParallelLayout layout,
        long bucketBytes = DefaultBucketBytes)
    {
        this.model = model;
        this.layout = layout;
        ZeroStage = parallel.ZeroStage;
        parameters = model.parameters().Where(p => p.requires_grad).ToList();
        var device = parameters.Count > 0 ? parameters[0].device : CPU;
        var expertOf = CheckpointFormat.MoeLayers(model)
            .SelectMany(l => CheckpointFormat.ExpertParams.Select(p => ($"{l.Prefix}.{p}", l)))
            .ToDictionary(x => x.Item1, x => x.l, StringComparer.Ordinal);
        var denseParams = new List<(string, Parameter, bool, int)>();
        var expertParams = new List<(string, Parameter, bool, int)>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad) continue;
            if (expertOf.TryGetValue(name, out var layer))
                expertParams.Add((name, p, Decays(name, p), layer.Layer.FirstExpert));
            else
                denseParams.Add((name, p, Decays(name, p), -1));
        }
        long bucket = Math.Max(1, bucketBytes / 4);
        dense = new GradientReducer(FlatPartition.Build(denseParams, layout.World.Size, layout.World.Rank, bucket), layout.World, device);
        experts = new GradientReducer(FlatPartition.Build(expertParams, layout.ExpertDataGroup.Size, layout.ExpertDataGroup.Rank, bucket),
            layout.ExpertDataGroup, device);
        if (ZeroStage == 0)
            full = CreateAdamW(model, train);
        else
        {
            denseShard = new ShardedAdamW(dense.Partition, device, parallel.OffloadOptimizer, train.AdamBeta1, train.AdamBeta2, train.AdamEps, train.WeightDecay);
            expertShard = new ShardedAdamW(experts.Partition, device, parallel.OffloadOptimizer, train.AdamBeta1, train.AdamBeta2, train.AdamEps, train.WeightDecay);
        }
    }

    public int ZeroStage { get; }

    /// <summary>Bytes of optimizer state held by this rank (AdamW moments; plus master weights when offloaded).</summary>
    public long StateBytes => stateBytes ??= full is not null
        ? StatesByName().Values.Sum(s => (s.exp_avg.numel() + s.exp_avg_sq.numel()) * s.exp_avg.ElementSize)
        : denseShard!.StateBytes + expertShard!.StateBytes;

    /// <summary>Whether AdamW's weight decay applies to the parameter: weight matrices yes, biases and norms no.</summary>
    public static bool Decays(string name, Parameter p)
        => !(p.dim() < 2 || IsBias(name) || name.Contains("norm", StringComparison.Ordinal));

    // MoE expert biases are stacked [E, n] tensors named b1/b2, so dimensionality alone does not identify them.
    private static bool IsBias(string name)
        => name.EndsWith(".bias", StringComparison.Ordinal) || name.EndsWith(".b1", StringComparison.Ordinal)
           || name.EndsWith(".b2", StringComparison.Ordinal);

    private static AdamW CreateAdamW(Seq2SeqTransformer model, TrainConfig t)
    {
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, p) in model.named_parameters())
            if (p.requires_grad)
                (Decays(name, p) ? decay : noDecay).Add(p);
        var groups = new List<AdamW.ParamGroup>
        {
            new(decay, t.Lr, t.AdamBeta1, t.AdamBeta2, t.AdamEps, t.WeightDecay),
            new(noDecay, t.Lr, t.AdamBeta1, t.AdamBeta2, t.AdamEps, 0.0),
        };
        return optim.AdamW(groups, t.Lr, t.AdamBeta1, t.AdamBeta2, t.AdamEps, t.WeightDecay);
    }

    public void ZeroGrad()
    {
        if (full is not null) full.zero_grad();
        else model.zero_grad();
    }

    public Tensor Step(double lr, double clipNorm)
    {
        if (full is not null)
            return StepFull(lr, clipNorm);

        dense.ReduceToShard(denseShard!.Grad, reduceScatter: ZeroStage == 2);
        experts.ReduceToShard(expertShard!.Grad, reduceScatter: ZeroStage == 2);
        model.zero_grad(); // the full gradients are not needed any more: free them (set to none)
        var square = denseShard.GradSquareSum() + expertShard.GradSquareSum();
        if (layout.World.Size > 1) layout.World.AllReduce(square);
        var norm = square.sqrt();
        if (clipNorm > 0)
        {
            using var _ = no_grad();
            var coef = Coefficient(norm, clipNorm);
            denseShard.Grad.mul_(coef.to_type(denseShard.Grad.dtype));
            expertShard.Grad.mul_(coef.to_type(expertShard.Grad.dtype));
        }
        dense.AllGatherParameters(denseShard.Update(lr));
        experts.AllGatherParameters(expertShard.Update(lr));
        return norm.to_type(ScalarType.Float32);
    }

    private Tensor StepFull(double lr, double clipNorm)
    {
        dense.AllReduceGradients();
        experts.AllReduceGradients();
        // One process computes the norm exactly as N ranks do (float64 square sums, one coefficient), not with
        // clip_grad_norm_'s fp32 arithmetic: a last-bit difference in the clip coefficient grows over a few dozen
        // steps (routing decisions flip) until N ranks no longer match one process within 1e-5 (measured: 5.7e-5
        // relative at step 29 of m3-tiny before this).
        // Non-expert gradients are whole and equal on every rank; expert gradients differ across an expert group
        // (different experts), so their squares are summed over it: every element counted once.
        var expertSquares = SquareSum(experts.Partition.Slots);
        if (layout.ExpertGroup.Size > 1) layout.ExpertGroup.AllReduce(expertSquares);
        var norm = (SquareSum(dense.Partition.Slots) + expertSquares).sqrt();
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
        foreach (var g in full!.ParamGroups)
            g.LearningRate = lr;
        full.step();
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

    public IReadOnlyList<TensorFile> StateFiles(bool writesShared, bool writesExperts)
    {
        if (full is null)
            return
            [
                new TensorFile(ZeroShardStateSource.FileOf(layout.Rank),
                [
                    ("dense.exp_avg", denseShard!.ExpAvg), ("dense.exp_avg_sq", denseShard.ExpAvgSq), ("dense.step", tensor(denseShard.Step)),
                    ("expert.exp_avg", expertShard!.ExpAvg), ("expert.exp_avg_sq", expertShard.ExpAvgSq), ("expert.step", tensor(expertShard.Step)),
                ]),
            ];

        // Stage 0: per parameter, experts per global id, in the files of the weights they belong to.
        var files = new List<TensorFile>();
        var states = StatesByName();
        var layers = CheckpointFormat.MoeLayers(model);
        var expertNames = CheckpointFormat.ExpertParameterNames(layers);
        if (writesShared)
            files.Add(new TensorFile(CheckpointFormat.OptimizerSharedFile, states.Where(kv => !expertNames.Contains(kv.Key))
                .SelectMany(kv => Fields(kv.Key, kv.Value.exp_avg, kv.Value.exp_avg_sq, kv.Value.step)).ToList()));
        if (writesExperts)
            foreach (var layer in layers)
            {
                var l = layer.Layer;
                var tensors = new List<(string, Tensor)>();
                for (int j = 0; j < l.LocalExperts; j++)
                    foreach (var p in CheckpointFormat.ExpertParams)
                    {
                        var st = states[$"{layer.Prefix}.{p}"];
                        tensors.AddRange(Fields(CheckpointFormat.ExpertTensor(l.FirstExpert + j, p), st.exp_avg[j], st.exp_avg_sq[j], st.step));
                    }
                files.Add(new TensorFile(CheckpointFormat.OptimizerExpertFile(layer.Index, l.FirstExpert, l.LocalExperts, l.Experts), tensors));
            }
        return files;
    }

    private static IEnumerable<(string, Tensor)> Fields(string key, Tensor avg, Tensor sq, long step) =>
        [($"{key}.{OptimizerStateSource.ExpAvg}", avg), ($"{key}.{OptimizerStateSource.ExpAvgSq}", sq), ($"{key}.step", tensor(step))];

    public void Describe(JsonObject manifest)
    {
        manifest["optimizer"] = "adamw";
        if (full is not null) return;
        manifest["zero"] = new JsonObject
        {
            ["stage"] = ZeroStage, ["world_size"] = layout.WorldSize, ["expert_parallel"] = layout.ExpertParallel,
            ["dense"] = PartitionMap(dense.Partition), ["expert"] = PartitionMap(experts.Partition),
            ["files"] = new JsonArray(Enumerable.Range(0, layout.WorldSize).Select(r => (JsonNode)ZeroShardStateSource.FileOf(r)).ToArray()),
        };
    }

    private static JsonObject PartitionMap(FlatPartition p) => new()
    {
        ["ranks"] = p.Ranks, ["shard_size"] = p.ShardSize, ["numel"] = p.Numel,
        ["slots"] = new JsonArray(p.Slots.Select(s => (JsonNode)new JsonObject
        {
            ["name"] = s.Name, ["offset"] = s.Offset, ["numel"] = s.Numel, ["experts"] = s.Experts,
        }).ToArray()),
    };

    public void Load(string dir, JsonObject manifest)
    {
        using var source = OptimizerStateSource.Open(dir, manifest);
        if (full is null)
        {
            source.FillShard(denseShard!);
            source.FillShard(expertShard!);
            denseShard!.LoadMasterFromParameters();
            expertShard!.LoadMasterFromParameters();
            return;
        }
        // Stage 0: each parameter (each local expert of a stacked one) reassembled from whatever layout saved it.
        var slots = dense.Partition.Slots.Concat(experts.Partition.Slots).ToDictionary(s => s.Name);
        foreach (var (name, st) in StatesByName())
        {
            var slot = slots[name];
            st.step = source.Step;
            for (int j = 0; j < slot.Experts; j++)
            {
                int expert = slot.FirstExpert < 0 ? -1 : slot.FirstExpert + j;
                using var avg = (slot.FirstExpert < 0 ? st.exp_avg.alias() : st.exp_avg[j]).view(-1);
                using var sq = (slot.FirstExpert < 0 ? st.exp_avg_sq.alias() : st.exp_avg_sq[j]).view(-1);
                source.Read(name, expert, OptimizerStateSource.ExpAvg, 0, avg);
                source.Read(name, expert, OptimizerStateSource.ExpAvgSq, 0, sq);
            }
        }
    }

    /// <summary>
    /// TorchSharp's AdamW state by parameter name. <c>state_dict()</c> returns the live <see cref="AdamW.State"/>
    /// objects in parameter-group order, so pairing them with the groups' parameters names each one; they can then be
    /// written and overwritten in place.
    /// </summary>
    private Dictionary<string, AdamW.State> StatesByName()
    {
        var names = model.named_parameters().ToDictionary(p => p.parameter.Handle, p => p.name);
        var ordered = full!.ParamGroups.Cast<AdamW.ParamGroup>().SelectMany(g => g.Parameters).ToList();
        var states = full.state_dict().State;
        if (states.Count != ordered.Count)
            throw new InvalidOperationException($"optimizer has {states.Count} state entries for {ordered.Count} parameters");
        var result = new Dictionary<string, AdamW.State>(StringComparer.Ordinal);
        for (int i = 0; i < ordered.Count; i++)
        {
            var state = (AdamW.State)states[i];
            if (!names.TryGetValue(ordered[i].Handle, out var name))
                throw new InvalidOperationException("optimizer holds a parameter that is not in the model");
            if (!state.exp_avg.shape.SequenceEqual(ordered[i].shape))
                throw new InvalidOperationException($"optimizer state order does not match parameter {name}");
            result[name] = state;
        }
        return result;
    }

    public void Dispose()
    {
        dense.Dispose();
        experts.Dispose();
        denseShard?.Dispose();
        expertShard?.Dispose();
        full?.Dispose();
    }
}
