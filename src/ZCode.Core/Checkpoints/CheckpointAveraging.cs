using System.Text.Json.Nodes;
using ZCode.Config;
using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>
/// Checkpoint averaging (fairseq's average_checkpoints): the element-wise mean of the weights of checkpoints of one
/// architecture, experts matched by global id whatever expert-parallel or ZeRO layout wrote them. The result holds
/// weights only and loads in eval, translate and `train --init-from`.
/// </summary>
public static class CheckpointAveraging
{
    /// <summary>The newest <paramref name="n"/> step checkpoints of run <paramref name="runDir"/>, oldest first.</summary>
    public static IReadOnlyList<string> Last(string runDir, int n)
    {
        var all = StepCheckpoints(runDir, n);
        return all.Skip(all.Count - n).ToList();
    }

    /// <summary>The <paramref name="n"/> step checkpoints of run <paramref name="runDir"/> with the best validations of its
    /// train.best_metric (from the history in its newest checkpoint's manifest), best first.</summary>
    public static IReadOnlyList<string> Best(string runDir, int n)
    {
        if (n < 1) throw new UserInputException($"--best: must be at least 1, got {n}");
        var all = StepCheckpoints(runDir, 1); // the newest holds the history; how many were kept is checked below
        var newest = CheckpointReader.ReadVerifiedManifest(all[^1]);
        var metric = CheckpointReader.ConfigOf(all[^1], newest).Train.BestMetric;
        var history = Training.ValidationHistory.FromJson(newest["validation"], metric)
            ?? throw new UserInputException($"{runDir}: the run has no validations (train.eval_interval 0); use --last N or name checkpoints");
        var byStep = all.ToDictionary(d => CheckpointStore.StepOf(d)!.Value);
        var best = history.BestSteps(int.MaxValue).Where(s => byStep.ContainsKey(s)).Take(n).Select(s => byStep[s]).ToList();
        if (best.Count < n)
            throw new UserInputException($"{runDir}: only {best.Count} of its checkpoints were saved at a validation step; train with " +
                                         $"train.keep_best: {n} (which saves and keeps the best-validated checkpoints), or use --last");
        return best;
    }

    private static IReadOnlyList<string> StepCheckpoints(string runDir, int n)
    {
        if (n < 1) throw new UserInputException($"--last: must be at least 1, got {n}");
        var all = CheckpointStore.List(Path.Combine(runDir, "checkpoints"));
        if (all.Count < n)
            throw new UserInputException($"{runDir}: holds {all.Count} step checkpoint(s), fewer than the {n} asked for");
        return all;
    }

    /// <summary>Writes the mean of <paramref name="inputs"/>' weights to <paramref name="outDir"/>; returns its config (the
    /// first input's).</summary>
    public static ZCodeConfig Average(IReadOnlyList<string> inputs, string outDir)
    {
        if (inputs.Count < 1) throw new UserInputException("average: give checkpoints, --run DIR --last N or --run DIR --best N");
        ExpertSurgery.RefuseExisting(outDir);
        var loaded = inputs.Select(ExpertSurgery.Open).ToList();
        for (int k = 1; k < loaded.Count; k++)
            ExpertSurgery.CheckCompatible(loaded[0], loaded[k], "averaged", sameExperts: true);
        var first = loaded[0];
        var padId = first.Manifest["pad_id"]?.GetValue<int>() ?? 0;
        using var target = new Seq2SeqTransformer(first.Config.Model, padId);
        var parameters = target.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        // Sums in float64, so the order of the inputs does not change the mean.
        var sums = parameters.ToDictionary(p => p.Key, p => zeros(p.Value.shape, ScalarType.Float64));
        foreach (var input in loaded)
        {
            using var model = new Seq2SeqTransformer(input.Config.Model, padId);
            CheckpointLoader.LoadWeights(input.Dir, model);
            using var _ = no_grad();
            foreach (var (name, p) in model.named_parameters())
                sums[name].add_(p.to(ScalarType.Float64));
            if (input == first)
                foreach (var (name, buffer) in model.named_buffers())
                    target.get_buffer(name)!.copy_(buffer);
        }
        using (no_grad())
            foreach (var (name, p) in parameters)
                p.copy_(sums[name].div_(loaded.Count));
        foreach (var s in sums.Values) s.Dispose();

        var cfg = first.Config;
        var manifest = new JsonObject
        {
            ["total_tokens"] = first.Manifest["total_tokens"]?.DeepClone(),
            ["config"] = ConfigWriter.ToYaml(cfg),
            ["config_base_dir"] = cfg.BaseDirectory,
            ["pad_id"] = padId,
            ["layout"] = new JsonObject { ["world_size"] = 1, ["data_parallel"] = 1, ["expert_parallel"] = cfg.Parallel.ExpertParallel },
            ["averaged_from"] = new JsonArray(loaded.Select(i => (JsonNode)new JsonObject
            {
                ["checkpoint"] = i.Dir, ["step"] = i.Manifest["step"]?.GetValue<long>() ?? 0,
            }).ToArray()),
            ["note"] = $"element-wise mean of the weights of {loaded.Count} checkpoints; no optimizer state " +
                       "(continue training with `zcode train --init-from`)",
        };
        manifest["step"] = loaded.Max(i => i.Manifest["step"]?.GetValue<long>() ?? 0);
        CheckpointStore.WriteDirectory(Path.GetFullPath(outDir), target, manifest);
        return cfg;
    }
}
