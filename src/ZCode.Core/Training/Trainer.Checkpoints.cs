using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Data;
using ZCode.Parallel;
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
                ["expert_parallel"] = layout.ExpertParallel, ["zero_stage"] = optimizer.Stage,
                ["offload_optimizer"] = cfg.Parallel.OffloadOptimizer,
            },
            ["data_state"] = JsonSerializer.SerializeToNode(data.State),
            // No generator state is stored: every step reseeds from (seed, step, micro-batch) (StepSeeding), which is exact.
            ["rng"] = new JsonObject { ["scheme"] = "reseed-per-step", ["seed"] = cfg.Train.Seed },
            ["expert_load"] = JsonSerializer.SerializeToNode(lastExpertLoad),
            ["saved_at"] = DateTime.UtcNow.ToString("O"),
        };
        if (optimizer.Stage > 0)
            manifest["zero"] = new JsonObject
            {
                ["stage"] = optimizer.Stage, ["world_size"] = layout.WorldSize, ["expert_parallel"] = layout.ExpertParallel,
                ["dense"] = PartitionMap(optimizer.Dense.Partition), ["expert"] = PartitionMap(optimizer.Experts.Partition),
                ["files"] = new JsonArray(Enumerable.Range(0, layout.WorldSize).Select(r => (JsonNode)ZeroShardStateSource.FileOf(r)).ToArray()),
            };
        return manifest;
    }

    private static JsonObject PartitionMap(FlatPartition p) => new()
    {
        ["ranks"] = p.Ranks, ["shard_size"] = p.ShardSize, ["numel"] = p.Numel,
        ["slots"] = new JsonArray(p.Slots.Select(s => (JsonNode)new JsonObject
        {
            ["name"] = s.Name, ["offset"] = s.Offset, ["numel"] = s.Numel, ["experts"] = s.Experts,
        }).ToArray()),
    };

    /// <summary>
    /// Saves a checkpoint from every rank, collectively (<see cref="CheckpointGroup"/>): rank 0 writes the shared
    /// weights, the ranks of the first expert group their blocks of experts (with their stage-0 optimizer state), and
    /// with ZeRO every rank its own optimizer shard; rank 0 lists every file's size and SHA-256 in the manifest before
    /// the directory is renamed into place, and no rank goes on before the checkpoint is complete.
    /// </summary>
    private void Save(int step)
    {
        bool sharded = optimizer.Stage > 0;
        using var scope = NewDisposeScope();
        CheckpointGroup? group = null;
        if (layout.WorldSize > 1 || sharded)
            group = CheckpointGroup.For(layout.World, model.ExpertGroup) with
            {
                ExtraFiles = sharded ? [(ZeroShardStateSource.FileOf(layout.Rank), ShardTensors())] : [],
            };
        var dir = checkpoints.Save(step, model, optimizer.Full, BuildManifest(), group);
        if (IsRank0)
        {
            observer.OnCheckpoint(step, dir);
            log.Information("saved checkpoint {Dir}", dir);
        }
    }

    /// <summary>This rank's ZeRO slices: dense.* over the world's flat vector, expert.* over its expert-data-parallel group's.</summary>
    private List<(string, Tensor)> ShardTensors()
    {
        var d = optimizer.DenseShard!;
        var e = optimizer.ExpertShard!;
        return
        [
            ("dense.exp_avg", d.ExpAvg), ("dense.exp_avg_sq", d.ExpAvgSq), ("dense.step", tensor(d.Step)),
            ("expert.exp_avg", e.ExpAvg), ("expert.exp_avg_sq", e.ExpAvgSq), ("expert.step", tensor(e.Step)),
        ];
    }

    /// <summary>Logs the layout and every rank's optimizer-state bytes (a collective: every rank calls it).</summary>
    private void LogLayout()
    {
        var bytes = HostCollectives.AllGather(layout.World, optimizer.StateBytes);
        log.Information("layout: {World} ranks (data-parallel {Dp}, expert-parallel {Ep}), ZeRO stage {Stage}{Offload}; " +
                        "optimizer state per rank: {Bytes} bytes",
            layout.WorldSize, layout.DataParallel, layout.ExpertParallel, optimizer.Stage,
            cfg.Parallel.OffloadOptimizer ? " with optimizer offload" : "", string.Join(", ", bytes));
    }

    /// <summary>
    /// Continues from a checkpoint of this run: weights, AdamW moments and step counts, sampler position, token
    /// count and step (the learning rate follows from the step). The optimizer state may come from any world size and
    /// ZeRO stage (<see cref="OptimizerStateSource"/>). metrics.jsonl keeps its records up to that step; records of
    /// later steps (work lost with the crash, about to be redone) are removed before appending (rank 0).
    /// </summary>
    public void Restore(string checkpointDir)
    {
        var manifest = CheckpointReader.ReadVerifiedManifest(checkpointDir);
        if (manifest["format"]?.GetValue<string>() != CheckpointFormat.Version)
            throw new UserInputException($"{checkpointDir}: not a {CheckpointFormat.Version} checkpoint; cannot resume from it");
        CheckpointLoader.LoadWeights(checkpointDir, model);
        if (optimizer.Full is not null && manifest["zero"] is null)
            CheckpointLoader.LoadOptimizer(checkpointDir, model, optimizer.Full);
        else
        {
            using var source = OptimizerStateSource.Open(checkpointDir, manifest);
            if (optimizer.Full is not null)
                FillFull(source);
            else
            {
                source.FillShard(optimizer.DenseShard!);
                source.FillShard(optimizer.ExpertShard!);
                optimizer.DenseShard!.LoadMasterFromParameters();
                optimizer.ExpertShard!.LoadMasterFromParameters();
            }
        }
        var state = manifest["data_state"]?.Deserialize<SamplerState>()
                    ?? throw new UserInputException($"{checkpointDir}: manifest has no data_state; cannot resume exactly");
        data.State = state;
        totalTokens = manifest["total_tokens"]?.GetValue<long>() ?? 0;
        startStep = (int)(manifest["step"]?.GetValue<long>() ?? 0);
        if (manifest["expert_load"] is JsonArray load)
            lastExpertLoad = load.Deserialize<double[][]>() ?? [];
        if (IsRank0)
            TrimMetrics(Path.Combine(outputDir, "metrics.jsonl"), startStep);
        log.Information("resumed from {Dir} at step {Step} ({Tokens:N0} tokens seen)", checkpointDir, startStep, totalTokens);
    }

    /// <summary>Stage-0 AdamW state from a ZeRO checkpoint: each parameter (each local expert) reassembled from slices.</summary>
    private void FillFull(OptimizerStateSource source)
    {
        var states = OptimizerStates.ByName(optimizer.Full!, model);
        var slots = optimizer.Dense.Partition.Slots.Concat(optimizer.Experts.Partition.Slots).ToDictionary(s => s.Name);
        foreach (var (name, st) in states)
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
