using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Config;
using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>
/// Aggregation of Experts and expert pruning on v1 checkpoints. Both write a new checkpoint
/// directory with weights only (no optimizer state: Adam moments of a changed expert set would not match the
/// router, so the result starts a new run with `zcode train --init-from`).
/// </summary>
public static class ExpertSurgery
{
    public enum SharedMode { Average, First }

    internal sealed record Input(string Path, string Dir, JsonObject Manifest, ZCodeConfig Config);

    /// <summary>
    /// Builds a model with E1+E2+... experts per MoE layer: input k's expert i becomes expert (E1+...+E(k-1)) + i,
    /// router rows concatenated in the same order, non-expert weights averaged (or taken from the first input).
    /// Returns the output directory's config.
    /// </summary>
    public static ZCodeConfig Aggregate(IReadOnlyList<string> inputs, string outDir, SharedMode mode)
    {
        if (inputs.Count < 2)
            throw new UserInputException("aggregate-experts: give at least two --from checkpoints");
        RefuseExisting(outDir);
        var loaded = inputs.Select(Open).ToList();
        for (int k = 1; k < loaded.Count; k++)
            CheckCompatible(loaded[0], loaded[k]);

        var cfg = CheckpointReader.ConfigOf(loaded[0].Dir, loaded[0].Manifest); // a copy: the inputs keep their own
        int total = loaded.Sum(i => i.Config.Model.Moe.Experts);
        cfg.Model.Moe.Experts = total;
        // expert_parallel must keep dividing the expert count: the largest divisor of both keeps the layout valid.
        cfg.Parallel.ExpertParallel = (int)System.Numerics.BigInteger.GreatestCommonDivisor(cfg.Parallel.ExpertParallel, total);
        ConfigValidator.Validate(cfg);

        var padId = loaded[0].Manifest["pad_id"]?.GetValue<int>() ?? 0;
        using var target = new Seq2SeqTransformer(cfg.Model, padId);
        var outLayers = CheckpointFormat.MoeLayers(target);
        var routerNames = outLayers.Select(l => $"{l.Prefix}.router.weight").ToHashSet();
        var expertNames = CheckpointFormat.ExpertParameterNames(outLayers);
        var targetState = target.state_dict();
        using (no_grad())
        {
            foreach (var (name, t) in targetState.Where(kv => !expertNames.Contains(kv.Key) && !routerNames.Contains(kv.Key)))
                t.zero_();
            int offset = 0;
            for (int k = 0; k < loaded.Count; k++)
            {
                var input = loaded[k];
                using var source = new Seq2SeqTransformer(input.Config.Model, padId);
                CheckpointLoader.LoadWeights(input.Dir, source);
                var srcState = source.state_dict();
                int e = input.Config.Model.Moe.Experts;
                foreach (var (name, t) in targetState)
                {
                    var s = srcState[name];
                    if (expertNames.Contains(name) || routerNames.Contains(name))
                        t.narrow(0, offset, e).copy_(s); // experts and router rows: stacked along dim 0
                    else if (mode == SharedMode.Average)
                        t.add_(s, alpha: 1.0 / loaded.Count);
                    else if (k == 0)
                        t.copy_(s);
                }
                offset += e;
            }
        }

        var manifest = new JsonObject
        {
            ["total_tokens"] = 0,
            ["config"] = ConfigWriter.ToYaml(cfg),
            ["config_base_dir"] = cfg.BaseDirectory,
            ["pad_id"] = padId,
            ["layout"] = new JsonObject { ["world_size"] = 1, ["data_parallel"] = 1, ["expert_parallel"] = cfg.Parallel.ExpertParallel },
            ["aggregated_from"] = new JsonArray(loaded.Select(i => (JsonNode)new JsonObject
            {
                ["checkpoint"] = i.Dir, ["step"] = i.Manifest["step"]?.GetValue<long>() ?? 0, ["experts"] = i.Config.Model.Moe.Experts,
            }).ToArray()),
            ["note"] = $"Aggregation of Experts: {string.Join(" + ", loaded.Select(i => i.Config.Model.Moe.Experts))} = {total} experts per MoE layer; " +
                       $"shared weights {(mode == SharedMode.Average ? "averaged" : "from the first input")}; optimizer state dropped " +
                       "(start training with `zcode train --init-from`)",
        };
        CheckpointStore.WriteDirectory(Path.GetFullPath(outDir), target, manifest);
        return cfg;
    }

    /// <summary>Indices of the <paramref name="keep"/> most used experts (ties: lower id first), in ascending id order.</summary>
    public static int[] MostUsed(IReadOnlyList<double> usage, int keep)
        => usage.Select((u, i) => (u, i)).OrderByDescending(x => x.u).ThenBy(x => x.i).Take(keep).Select(x => x.i).Order().ToArray();

    /// <summary>
    /// Keeps the given experts per MoE layer (global ids into the source), with their router rows, and writes the
    /// smaller model. <paramref name="usage"/> (tokens routed per expert and layer) is stored in the manifest.
    /// </summary>
    public static ZCodeConfig Prune(string checkpoint, IReadOnlyList<int[]> keepPerLayer, IReadOnlyList<double[]> usage, string outDir, string measuredOn)
    {
        RefuseExisting(outDir);
        var input = Open(checkpoint);
        int keep = keepPerLayer.Count > 0 ? keepPerLayer[0].Length : input.Config.Model.Moe.Experts;
        if (keepPerLayer.Any(k => k.Length != keep))
            throw new ArgumentException("every MoE layer must keep the same number of experts");
        var cfg = CheckpointReader.ConfigOf(input.Dir, input.Manifest);
        cfg.Model.Moe.Experts = keep;
        cfg.Model.Moe.TopK = Math.Min(cfg.Model.Moe.TopK, keep);
        cfg.Parallel.ExpertParallel = (int)System.Numerics.BigInteger.GreatestCommonDivisor(cfg.Parallel.ExpertParallel, keep);
        ConfigValidator.Validate(cfg);
        var padId = input.Manifest["pad_id"]?.GetValue<int>() ?? 0;
        using var model = new Seq2SeqTransformer(cfg.Model, padId);
        CheckpointLoader.LoadWeights(input.Dir, model, (layer, _) => keepPerLayer[layer]);
        var manifest = new JsonObject
        {
            ["total_tokens"] = input.Manifest["total_tokens"]?.DeepClone(),
            ["config"] = ConfigWriter.ToYaml(cfg),
            ["config_base_dir"] = cfg.BaseDirectory,
            ["pad_id"] = padId,
            ["layout"] = new JsonObject { ["world_size"] = 1, ["data_parallel"] = 1, ["expert_parallel"] = cfg.Parallel.ExpertParallel },
            ["pruned_from"] = new JsonObject
            {
                ["checkpoint"] = input.Dir, ["step"] = input.Manifest["step"]?.GetValue<long>() ?? 0,
                ["kept_experts"] = JsonSerializer.SerializeToNode(keepPerLayer),
                ["usage"] = JsonSerializer.SerializeToNode(usage), ["measured_on"] = measuredOn,
            },
            ["note"] = $"pruned to the {keep} most used experts per MoE layer (measured on {measuredOn}); optimizer state dropped " +
                       "(fine-tune with `zcode train --init-from`)",
        };
        CheckpointStore.WriteDirectory(Path.GetFullPath(outDir), model, manifest);
        return cfg;
    }

    internal static void RefuseExisting(string outDir)
    {
        if (Directory.Exists(outDir) || File.Exists(outDir))
            throw new UserInputException($"--out {outDir}: already exists; choose a new path (nothing is overwritten)");
    }

    internal static Input Open(string path)
    {
        var dir = CheckpointReader.ResolveDirectory(path);
        var manifest = CheckpointReader.ReadVerifiedManifest(dir);
        if (manifest["format"]?.GetValue<string>() != CheckpointFormat.Version)
            throw new UserInputException($"{dir}: not a {CheckpointFormat.Version} checkpoint");
        return new Input(path, dir, manifest, CheckpointReader.ConfigOf(dir, manifest));
    }

    /// <summary>Refuses <paramref name="b"/> unless it has <paramref name="a"/>'s architecture and vocabulary (and, with
    /// <paramref name="sameExperts"/>, its expert count); <paramref name="what"/> names the operation in the message.</summary>
    internal static void CheckCompatible(Input a, Input b, string what = "aggregated", bool sameExperts = false)
    {
        var ma = a.Config.Model;
        var mb = b.Config.Model;
        (string Key, object A, object B)[] keys =
        [
            ("model.vocab_size", ma.VocabSize, mb.VocabSize), ("model.d_model", ma.DModel, mb.DModel),
            ("model.ffn_dim", ma.FfnDim, mb.FfnDim), ("model.heads", ma.Heads, mb.Heads),
            ("model.encoder_layers", ma.EncoderLayers, mb.EncoderLayers), ("model.decoder_layers", ma.DecoderLayers, mb.DecoderLayers),
            ("model.moe.every_n_layers", ma.Moe.EveryNLayers, mb.Moe.EveryNLayers),
            ("model.positions", ma.Positions, mb.Positions), ("model.max_positions", ma.MaxPositions, mb.MaxPositions),
            ("data.spm_model (SHA-256)", SpmHash(a), SpmHash(b)),
            ("model.moe.experts", sameExperts ? ma.Moe.Experts : 0, sameExperts ? mb.Moe.Experts : 0),
        ];
        foreach (var (key, va, vb) in keys)
            if (!Equals(va, vb))
                throw new UserInputException($"{b.Path}: {key} is {vb} but {a.Path} has {va}; only checkpoints of the same " +
                                             $"architecture and vocabulary can be {what}");
    }

    private static string SpmHash(Input i)
    {
        var path = i.Config.ResolvePath(i.Config.Data.SpmModel);
        if (!File.Exists(path))
            throw new UserInputException($"{i.Dir}: its data.spm_model {path} is missing; aggregation needs it to check the vocabularies match");
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s))[..16];
    }
}
