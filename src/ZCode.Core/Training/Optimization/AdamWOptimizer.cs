using System.Text.Json.Nodes;
using TorchSharp.Modules;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Runtime;
using static TorchSharp.torch;

namespace ZCode.Training.Optimization;

/// <summary>
/// AdamW (decoupled weight decay on weight matrices only) for any layout and ZeRO stage, over two
/// <see cref="FlatParameterGroup"/>s: the non-expert parameters, whose gradients are summed over the world, and this
/// rank's experts, summed over their expert-data-parallel group. ZeRO 0 keeps the whole state on every rank; ZeRO 1
/// and 2 keep only this rank's element-wise slice of it (2 also reduce-scatters the gradients), optionally in host
/// memory (offload). The saved state is addressed by parameter name and global expert id, so any layout restores it.
/// </summary>
public sealed class AdamWOptimizer : ITrainingOptimizer
{
    /// <summary>Gradient bucket size (DeepSpeed's default reduce bucket is of this order).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    private readonly Seq2SeqTransformer model;
    private readonly ParallelLayout layout;
    private readonly FlatParameterGroup dense;
    private readonly FlatParameterGroup experts;

    /// <param name="model">The model, already on its device: its parameters move into the optimizer's flat buffers there
    /// (they stay the model's parameters, as views); the model must not be moved afterwards.</param>
    public AdamWOptimizer(Seq2SeqTransformer model, TrainConfig train, ParallelConfig parallel, ParallelLayout layout,
        long bucketBytes = DefaultBucketBytes)
    {
        this.model = model;
        this.layout = layout;
        ZeroStage = parallel.ZeroStage;
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;
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
        FlatParameterGroup Group(List<(string, Parameter, bool, int)> ps, ICommunicator comm)
        {
            // ZeRO 0: every rank updates everything, so the slice is the whole vector.
            int ranks = ZeroStage == 0 ? 1 : comm.Size, rank = ZeroStage == 0 ? 0 : comm.Rank;
            return new FlatParameterGroup(FlatPartition.Build(ps, ranks, rank, bucket), comm, device, ZeroStage,
                parallel.OffloadOptimizer, bucket, train.AdamBeta1, train.AdamBeta2, train.AdamEps, train.WeightDecay);
        }
        dense = Group(denseParams, layout.World);
        experts = Group(expertParams, layout.ExpertDataGroup);
    }

    public int ZeroStage { get; }

    public long StateBytes => dense.StateBytes + experts.StateBytes;

    /// <summary>Whether AdamW's weight decay applies to the parameter: weight matrices yes, biases and norms no.</summary>
    public static bool Decays(string name, Parameter p)
        => !(p.dim() < 2 || IsBias(name) || name.Contains("norm", StringComparison.Ordinal));

    // MoE expert biases are stacked [E, n] tensors named b1/b2, so dimensionality alone does not identify them.
    private static bool IsBias(string name)
        => name.EndsWith(".bias", StringComparison.Ordinal) || name.EndsWith(".b1", StringComparison.Ordinal)
           || name.EndsWith(".b2", StringComparison.Ordinal);

    public void ZeroGrad()
    {
        dense.ZeroGrad();
        experts.ZeroGrad();
    }

    public Tensor Step(double lr, double clipNorm)
    {
        using (StepProfile.Measure("optimizer: gradient reduction"))
        {
            dense.Reduce();
            experts.Reduce();
        }
        var clipping = StepProfile.Measure("optimizer: norm and clipping");
        // The global norm counts every element once, in float64 on the device (one coefficient for every rank; the
        // clip_grad_norm_ arithmetic in fp32 would let N ranks drift from one process over a few dozen steps).
        // ZeRO 0: non-expert gradients are whole and equal on every rank, expert gradients differ across an expert group
        // (different experts), so only theirs are summed over it. ZeRO 1/2: each rank holds a disjoint slice of both.
        Tensor square;
        if (ZeroStage == 0)
        {
            var expertSquares = experts.GradSquareSum();
            if (layout.ExpertGroup.Size > 1) layout.ExpertGroup.AllReduce(expertSquares);
            square = dense.GradSquareSum() + expertSquares;
        }
        else
        {
            square = dense.GradSquareSum() + experts.GradSquareSum();
            if (layout.World.Size > 1) layout.World.AllReduce(square);
        }
        var norm = square.sqrt();
        Tensor? coef = null;
        if (clipNorm > 0)
        {
            using var _ = no_grad();
            // torch's clip_grad_norm_ coefficient max / (norm + 1e-6), capped at 1 (multiplying by 1 is exact, so a norm
            // under the limit leaves the gradients unchanged), applied by the update as an fp32 scalar.
            coef = ((norm + 1e-6).reciprocal() * clipNorm).clamp_max(1.0).to_type(ScalarType.Float32);
        }
        clipping.Dispose();
        using (StepProfile.Measure("optimizer: adamw"))
        {
            dense.Update(lr, coef);
            experts.Update(lr, coef);
        }
        return norm.to_type(ScalarType.Float32);
    }

    public IReadOnlyList<TensorFile> StateFiles(bool writesShared, bool writesExperts)
    {
        if (ZeroStage > 0)
            return
            [
                new TensorFile(ZeroShardStateSource.FileOf(layout.Rank),
                [
                    ("dense.exp_avg", dense.ExpAvg), ("dense.exp_avg_sq", dense.ExpAvgSq), ("dense.step", tensor(dense.Step)),
                    ("expert.exp_avg", experts.ExpAvg), ("expert.exp_avg_sq", experts.ExpAvgSq), ("expert.step", tensor(experts.Step)),
                ]),
            ];

        // ZeRO 0: per parameter, experts per global id, in the files of the weights they belong to.
        var files = new List<TensorFile>();
        if (writesShared)
            files.Add(new TensorFile(CheckpointFormat.OptimizerSharedFile, dense.Partition.Slots
                .SelectMany(s => Fields(s.Name, State(dense.ExpAvg, s), State(dense.ExpAvgSq, s), dense.Step)).ToList()));
        if (!writesExperts) return files;
        var slots = experts.Partition.Slots.ToDictionary(s => s.Name);
        foreach (var layer in CheckpointFormat.MoeLayers(model))
        {
            var l = layer.Layer;
            var tensors = new List<(string, Tensor)>();
            for (int j = 0; j < l.LocalExperts; j++)
                foreach (var p in CheckpointFormat.ExpertParams)
                {
                    var slot = slots[$"{layer.Prefix}.{p}"];
                    tensors.AddRange(Fields(CheckpointFormat.ExpertTensor(l.FirstExpert + j, p), State(experts.ExpAvg, slot)[j],
                        State(experts.ExpAvgSq, slot)[j], experts.Step));
                }
            files.Add(new TensorFile(CheckpointFormat.OptimizerExpertFile(layer.Index, l.FirstExpert, l.LocalExperts, l.Experts), tensors));
        }
        return files;
    }

    /// <summary>The parameter's part of a flat state vector, shaped like the parameter (a view).</summary>
    private static Tensor State(Tensor flat, FlatSlot slot) => flat.narrow(0, slot.Offset, slot.Numel).view(slot.Param.shape);

    private static IEnumerable<(string, Tensor)> Fields(string key, Tensor avg, Tensor sq, long step) =>
        [($"{key}.{OptimizerStateSource.ExpAvg}", avg), ($"{key}.{OptimizerStateSource.ExpAvgSq}", sq), ($"{key}.step", tensor(step))];

    public void Describe(JsonObject manifest)
    {
        manifest["optimizer"] = "adamw";
        if (ZeroStage == 0) return;
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
        foreach (var g in new[] { dense, experts })
        {
            source.Fill(g.Partition, g.ExpAvg, g.ExpAvgSq);
            g.Step = source.Step;
            g.LoadMasterFromValues();
        }
    }

    public void Dispose()
    {
        dense.Dispose();
        experts.Dispose();
    }
}
