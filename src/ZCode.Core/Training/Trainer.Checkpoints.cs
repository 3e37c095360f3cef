using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Data;
using ZCode.Parallel;
using ZCode.Training.Optimization;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>The trainer's side of checkpoints: what goes in the manifest, sharded saving, and exact resume.</summary>
public sealed partial class Trainer
{
    /// <summary>The step training continues from (0 for a fresh run).</summary>
    public int StartStep => startStep;

    private JsonObject BuildManifest()
    {
        var manifest = new JsonObject
        {
            ["total_tokens"] = totalTokens,
            ["config"] = ConfigWriter.ToYaml(cfg),
            ["config_base_dir"] = cfg.BaseDirectory,
            ["pad_id"] = model.PadId,
            ["layout"] = new JsonObject
            {
                ["world_size"] = layout.WorldSize, ["data_parallel"] = layout.DataParallel,
                ["expert_parallel"] = layout.ExpertParallel, ["zero_stage"] = optimizer.ZeroStage,
                ["offload_optimizer"] = cfg.Parallel.OffloadOptimizer,
            },
            ["data_state"] = JsonSerializer.SerializeToNode(data.State),
            // No generator state is stored: every step reseeds from (seed, step, micro-batch) (StepSeeding), which is exact.
            ["rng"] = new JsonObject { ["scheme"] = "reseed-per-step", ["seed"] = cfg.Train.Seed },
            ["expert_load"] = JsonSerializer.SerializeToNode(lastExpertLoad),
            ["saved_at"] = DateTime.UtcNow.ToString("O"),
        };
        optimizer.Describe(manifest);
        if (ema is not null) manifest["ema_decay"] = cfg.Train.EmaDecay;
        manifest["validation"] = history.ToJson();
        return manifest;
    }

    /// <summary>
    /// Saves a checkpoint from every rank, collectively (<see cref="CheckpointGroup"/>): rank 0 writes the shared
    /// weights, the ranks of the first expert group their blocks of experts, and every rank the optimizer state files
    /// it owns; rank 0 lists every file's size and SHA-256 in the manifest before the directory is renamed into place,
    /// and no rank goes on before the checkpoint is complete.
    /// </summary>
    private void Save(int step)
    {
        using var scope = NewDisposeScope();
        var (group, files) = CheckpointFiles();
        var keep = cfg.Train.KeepBest > 0 ? history.BestSteps(cfg.Train.KeepBest).Select(s => (long)s).ToHashSet() : null;
        var dir = checkpoints.Save(step, model, BuildManifest(), group, files, keep);
        if (IsRank0)
        {
            observer.OnCheckpoint(step, dir);
            log.Information("saved checkpoint {Dir}", dir);
        }
    }

    /// <summary>checkpoints/best: the whole state at the best validation so far (collective, like <see cref="Save"/>).</summary>
    private void SaveBest(int step)
    {
        using var scope = NewDisposeScope();
        var (group, files) = CheckpointFiles();
        var dir = checkpoints.SaveAs("best", step, model, BuildManifest(), group, files);
        if (IsRank0) log.Information("saved best checkpoint {Dir} (step {Step})", dir, step);
    }

    /// <summary>How this rank takes part in writing a checkpoint, and its files besides the weights: its optimizer
    /// state and, with train.ema_decay, its share of the averaged weights.</summary>
    private (CheckpointGroup? Group, List<TensorFile> Files) CheckpointFiles()
    {
        var group = layout.WorldSize > 1 ? CheckpointGroup.For(layout.World, model.ExpertGroup) : null;
        bool shared = group?.WritesShared ?? true, experts = group?.WritesExperts ?? true;
        var files = optimizer.StateFiles(shared, experts).ToList();
        if (ema is not null)
            files.AddRange(CheckpointStore.WeightFiles(model, shared, experts, CheckpointFormat.EmaPrefix, ema.Weights));
        return (group, files);
    }

    /// <summary>Logs the layout and every rank's optimizer-state bytes (a collective: every rank calls it).</summary>
    private void LogLayout()
    {
        var bytes = HostCollectives.AllGather(layout.World, optimizer.StateBytes);
        log.Information("layout: {World} ranks (data-parallel {Dp}, expert-parallel {Ep}), ZeRO stage {Stage}{Offload}; " +
                        "optimizer state per rank: {Bytes} bytes",
            layout.WorldSize, layout.DataParallel, layout.ExpertParallel, optimizer.ZeroStage,
            cfg.Parallel.OffloadOptimizer ? " with optimizer offload" : "", string.Join(", ", bytes));
    }

    /// <summary>
    /// Continues from a checkpoint of this run: weights, optimizer state, sampler position, token count and step (the
    /// learning rate follows from the step). The optimizer state may come from any world size and ZeRO stage.
    /// metrics.jsonl keeps its records up to that step; records of later steps (work lost with the crash, about to be
    /// redone) are removed before appending (rank 0).
    /// </summary>
    public void Restore(string checkpointDir)
    {
        var manifest = CheckpointReader.ReadVerifiedManifest(checkpointDir);
        if (manifest["format"]?.GetValue<string>() != CheckpointFormat.Version)
            throw new UserInputException($"{checkpointDir}: not a {CheckpointFormat.Version} checkpoint; cannot resume from it");
        if (ema is not null)
        {
            // The saved average (or, from a checkpoint without one, the weights) passes through the model into the EMA.
            if (CheckpointLoader.HasEma(checkpointDir))
                CheckpointLoader.LoadWeights(checkpointDir, model, prefix: CheckpointFormat.EmaPrefix);
            else
                CheckpointLoader.LoadWeights(checkpointDir, model);
            ema.CopyFromModel();
        }
        CheckpointLoader.LoadWeights(checkpointDir, model);
        optimizer.Load(checkpointDir, manifest);
        history = ValidationHistory.FromJson(manifest["validation"], cfg.Train.BestMetric) ?? new ValidationHistory(cfg.Train.BestMetric);
        var state = manifest["data_state"]?.Deserialize<SamplerState>()
                    ?? throw new UserInputException($"{checkpointDir}: manifest has no data_state; cannot resume exactly");
        data.State = state;
        totalTokens = manifest["total_tokens"]?.GetValue<long>() ?? 0;
        step = startStep = (int)(manifest["step"]?.GetValue<long>() ?? 0);
        if (manifest["expert_load"] is JsonArray load)
            lastExpertLoad = load.Deserialize<double[][]>() ?? [];
        if (IsRank0)
            TrimMetrics(Path.Combine(outputDir, "metrics.jsonl"), startStep);
        log.Information("resumed from {Dir} at step {Step} ({Tokens:N0} tokens seen)", checkpointDir, startStep, totalTokens);
    }

    private static void TrimMetrics(string path, int lastStep)
    {
        if (!File.Exists(path))
            return;
        var lines = File.ReadAllLines(path);
        var keep = lines.Where(l =>
        {
            try
            {
                using var doc = JsonDocument.Parse(l);
                return doc.RootElement.GetProperty("step").GetInt64() <= lastStep;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                return false; // a line cut short by the crash
            }
        }).ToList();
        if (keep.Count == lines.Length)
            return;
        var tmp = path + ".tmp";
        File.WriteAllLines(tmp, keep);
        File.Move(tmp, path, overwrite: true);
    }
}
