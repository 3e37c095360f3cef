using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Data;

namespace ZCode.Training;

/// <summary>The trainer's side of checkpoints: what goes in the manifest, and exact resume from one.</summary>
public sealed partial class Trainer
{
    /// <summary>The step training continues from (0 for a fresh run).</summary>
    public int StartStep => startStep;

    private JsonObject BuildManifest() => new()
    {
        ["total_tokens"] = totalTokens,
        ["config"] = ConfigWriter.ToYaml(cfg),
        ["config_base_dir"] = cfg.BaseDirectory,
        ["pad_id"] = model.PadId,
        ["layout"] = new JsonObject
        {
            ["world_size"] = 1, ["data_parallel"] = 1, ["expert_parallel"] = cfg.Parallel.ExpertParallel,
            ["zero_stage"] = cfg.Parallel.ZeroStage,
        },
        ["data_state"] = JsonSerializer.SerializeToNode(data.State),
        // No generator state is stored: every step reseeds from (seed, step) (StepSeeding), which is exact.
        ["rng"] = new JsonObject { ["scheme"] = "reseed-per-step", ["seed"] = cfg.Train.Seed },
        ["expert_load"] = JsonSerializer.SerializeToNode(lastExpertLoad),
        ["saved_at"] = DateTime.UtcNow.ToString("O"),
    };

    /// <summary>
    /// Continues from a checkpoint of this run: weights, AdamW moments and step counts, sampler position, token
    /// count and step (the learning rate follows from the step). metrics.jsonl keeps its records up to that step;
    /// records of later steps (work lost with the crash, about to be redone) are removed before appending.
    /// </summary>
    public void Restore(string checkpointDir)
    {
        var manifest = CheckpointReader.ReadVerifiedManifest(checkpointDir);
        if (manifest["format"]?.GetValue<string>() != CheckpointFormat.Version)
            throw new UserInputException($"{checkpointDir}: not a {CheckpointFormat.Version} checkpoint; cannot resume from it");
        CheckpointLoader.LoadWeights(checkpointDir, model);
        CheckpointLoader.LoadOptimizer(checkpointDir, model, optimizer);
        var state = manifest["data_state"]?.Deserialize<SamplerState>()
                    ?? throw new UserInputException($"{checkpointDir}: manifest has no data_state; cannot resume exactly");
        data.State = state;
        totalTokens = manifest["total_tokens"]?.GetValue<long>() ?? 0;
        startStep = (int)(manifest["step"]?.GetValue<long>() ?? 0);
        if (manifest["expert_load"] is JsonArray load)
            lastExpertLoad = load.Deserialize<double[][]>() ?? [];
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
