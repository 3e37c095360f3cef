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
        var group = layout.WorldSize > 1 ? CheckpointGroup.For(layout.World, model.ExpertGroup) : null;
        var state = optimizer.StateFiles(group?.WritesShared ?? true, group?.WritesExperts ?? true);
        var dir = checkpoints.Save(step, model, BuildManifest(), group, state);
        if (IsRank0)
        {
            observer.OnCheckpoint(step, dir);
            log.Information("saved checkpoint {Dir}", dir);
        }
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
        CheckpointLoader.LoadWeights(checkpointDir, model);
        optimizer.Load(checkpointDir, manifest);
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
