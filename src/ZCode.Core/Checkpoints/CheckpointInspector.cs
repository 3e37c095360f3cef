using System.Text.Json.Nodes;
using ZCode.Config;
using ZCode.Model;

namespace ZCode.Checkpoints;

/// <summary>What `zcode inspect` reports about a checkpoint, as JSON (the text view is rendered from it).</summary>
public static class CheckpointInspector
{
    public static JsonObject Report(string path)
    {
        var dir = CheckpointReader.ResolveDirectory(path);
        var manifest = CheckpointReader.ReadManifest(dir);
        var cfg = CheckpointReader.ConfigOf(dir, manifest);
        var m = cfg.Model;
        var count = ParameterCount.Of(m);
        var files = CheckpointReader.CheckFiles(dir, manifest);
        var experts = CheckpointLoader.ExpertCounts(manifest);
        return new JsonObject
        {
            ["directory"] = dir,
            ["format"] = manifest["format"]?.DeepClone(),
            ["step"] = manifest["step"]?.GetValue<long>() ?? 0,
            ["total_tokens"] = manifest["total_tokens"]?.GetValue<long>() ?? 0,
            ["experts"] = new JsonArray(experts.Select(e => (JsonNode)e).ToArray()),
            ["total_params"] = count.Total,
            ["non_expert_params"] = count.NonExpert,
            ["expert_params"] = count.Expert,
            ["per_expert_params"] = count.PerExpert,
            ["active_params_per_token"] = count.ActivePerToken,
            ["has_optimizer_state"] = manifest["files"]!.AsObject().ContainsKey(CheckpointFormat.OptimizerSharedFile),
            ["note"] = manifest["note"]?.DeepClone(),
            ["expert_load"] = manifest["expert_load"]?.DeepClone(),
            ["layout"] = manifest["layout"]?.DeepClone(),
            ["files_ok"] = files.All(f => f.Ok),
            ["files"] = new JsonArray(files.Select(f => (JsonNode)new JsonObject
            {
                ["name"] = f.Name, ["size"] = f.Size, ["ok"] = f.Ok, ["problem"] = f.Problem,
            }).ToArray()),
            ["config"] = new JsonObject
            {
                ["vocab_size"] = m.VocabSize, ["d_model"] = m.DModel, ["ffn_dim"] = m.FfnDim, ["heads"] = m.Heads,
                ["encoder_layers"] = m.EncoderLayers, ["decoder_layers"] = m.DecoderLayers,
                ["experts"] = m.Moe.Experts, ["top_k"] = m.Moe.TopK, ["every_n_layers"] = m.Moe.EveryNLayers,
                ["expert_parallel"] = cfg.Parallel.ExpertParallel, ["max_steps"] = cfg.Train.MaxSteps,
                ["tokens_per_batch"] = cfg.Train.TokensPerBatch, ["lr"] = cfg.Train.Lr, ["seed"] = cfg.Train.Seed,
                ["yaml"] = ConfigWriter.ToYaml(cfg),
            },
        };
    }
}
