using System.Text.Json.Nodes;
using TorchSharp.Modules;
using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>
/// Loads v1 checkpoint tensors into a built model and optimizer. Experts are addressed by GLOBAL id: local expert
/// j of MoE layer L takes <c>expert.{ids[L][j]}.*</c>, so a process holding a subset of experts (expert
/// parallelism, pruning) or a different count loads the same files. Tensors are read straight into parameter memory.
/// </summary>
public static class CheckpointLoader
{
    /// <summary>Global expert ids per MoE layer; null means 0..E-1 of each model layer (a single process).</summary>
    public delegate IReadOnlyList<int> ExpertSelector(int layer, int localExperts);

    public static IReadOnlyList<int> AllExperts(int layer, int localExperts) => Enumerable.Range(0, localExperts).ToList();

    public static void LoadWeights(string dir, Seq2SeqTransformer model, ExpertSelector? experts = null)
    {
        experts ??= AllExperts;
        var layers = CheckpointFormat.MoeLayers(model);
        var routers = layers.ToDictionary(l => $"{l.Prefix}.router.weight");
        using (var shared = new SafeTensors.Reader(Path.Combine(dir, CheckpointFormat.SharedFile)))
        {
            foreach (var (name, t) in CheckpointFormat.SharedTensors(model, layers))
            {
                if (routers.TryGetValue(name, out var layer) && shared.Contains(name)
                    && shared.Tensors[name].Shape[0] != t.shape[0])
                {
                    // A model holding fewer experts than stored (pruning) keeps the router rows of its experts.
                    using var full = shared.Read(name);
                    using var ids = TorchSharp.torch.tensor(experts(layer.Index, layer.Layer.Experts).Select(i => (long)i).ToArray());
                    using var rows = full.index_select(0, ids);
                    using var _ = TorchSharp.torch.no_grad();
                    t.copy_(rows);
                    continue;
                }
                shared.ReadInto(name, t);
            }
        }
        foreach (var layer in layers)
        {
            var file = Path.Combine(dir, CheckpointFormat.ExpertFile(layer.Index));
            if (!File.Exists(file))
                throw new UserInputException($"{file}: missing; the checkpoint has fewer MoE layers than the model config");
            using var reader = new SafeTensors.Reader(file);
            var ids = experts(layer.Index, layer.Layer.Experts);
            foreach (var p in CheckpointFormat.ExpertParams)
            {
                var stacked = CheckpointFormat.ExpertParameter(layer, p);
                for (int j = 0; j < ids.Count; j++)
                {
                    using var slot = stacked[j];
                    reader.ReadInto(CheckpointFormat.ExpertTensor(ids[j], p), slot);
                }
            }
        }
    }

    /// <summary>Restores AdamW moments and step counts (same global-id addressing as the weights).</summary>
    public static void LoadOptimizer(string dir, Seq2SeqTransformer model, AdamW optimizer, ExpertSelector? experts = null)
    {
        experts ??= AllExperts;
        var file = Path.Combine(dir, CheckpointFormat.OptimizerSharedFile);
        if (!File.Exists(file))
            throw new UserInputException($"{dir}: holds no optimizer state (it was aggregated or pruned); start a new run from it with --init-from");
        var layers = CheckpointFormat.MoeLayers(model);
        var states = OptimizerStates.ByName(optimizer, model);
        var expertNames = CheckpointFormat.ExpertParameterNames(layers);
        using (var shared = new SafeTensors.Reader(file))
        {
            foreach (var (name, st) in states.Where(kv => !expertNames.Contains(kv.Key)))
                Restore(shared, name, st.exp_avg, st.exp_avg_sq, s => st.step = s);
        }
        foreach (var layer in layers)
        {
            using var reader = new SafeTensors.Reader(Path.Combine(dir, CheckpointFormat.OptimizerExpertFile(layer.Index)));
            var ids = experts(layer.Index, layer.Layer.Experts);
            foreach (var p in CheckpointFormat.ExpertParams)
            {
                var st = states[$"{layer.Prefix}.{p}"];
                for (int j = 0; j < ids.Count; j++)
                {
                    using var avg = st.exp_avg[j];
                    using var sq = st.exp_avg_sq[j];
                    // One stacked parameter has one step count; every expert stores the same value.
                    Restore(reader, CheckpointFormat.ExpertTensor(ids[j], p), avg, sq, s => st.step = s);
                }
            }
        }
    }

    private static void Restore(SafeTensors.Reader reader, string key, Tensor avg, Tensor sq, Action<long> setStep)
    {
        reader.ReadInto($"{key}.exp_avg", avg);
        reader.ReadInto($"{key}.exp_avg_sq", sq);
        using var step = reader.Read($"{key}.step");
        setStep(step.item<long>());
    }

    /// <summary>Expert counts per MoE layer recorded in a manifest.</summary>
    public static int[] ExpertCounts(JsonObject manifest)
        => manifest["moe_layers"] is JsonArray a ? a.Select(l => l!["experts"]!.GetValue<int>()).ToArray() : [];
}
