using System.Text.Json.Nodes;
using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>
/// Loads v1 checkpoint weights into a built model (optimizers load their own state). Experts are addressed by GLOBAL id: local expert
/// j of MoE layer L takes <c>expert.{ids[L][j]}.*</c>, wherever it is stored (the layer's single file, or the block
/// files that expert-parallel ranks wrote), so a process holding a subset of experts (expert parallelism at any size,
/// pruning) or a different count loads the same checkpoint. Tensors are read straight into parameter memory.
/// </summary>
public static class CheckpointLoader
{
    /// <summary>Global expert ids of a layer's local experts 0..localExperts-1 (a custom choice, e.g. pruning).</summary>
    public delegate IReadOnlyList<int> ExpertSelector(int layer, int localExperts);

    /// <summary>Experts 0..localExperts-1.</summary>
    public static IReadOnlyList<int> AllExperts(int layer, int localExperts) => Enumerable.Range(0, localExperts).ToList();

    /// <summary>Loads weights. Without <paramref name="experts"/> every MoE layer loads the experts it holds
    /// (<see cref="Model.Moe.MoeLayer.FirstExpert"/> onwards: all of them in a single process, the rank's block under
    /// expert parallelism); with it, the selected global ids. A model with fewer experts than stored (pruning) keeps
    /// the router rows of the selected experts (of experts 0..E-1 without a selector).</summary>
    /// <param name="prefix">The file set: "" for the trained weights, <see cref="CheckpointFormat.EmaPrefix"/> for their
    /// moving average.</param>
    public static void LoadWeights(string dir, Seq2SeqTransformer model, ExpertSelector? experts = null, string prefix = "")
    {
        var layers = CheckpointFormat.MoeLayers(model);
        var files = FileNames(dir);
        var routers = layers.ToDictionary(l => $"{l.Prefix}.router.weight");
        using (var shared = new SafeTensors.Reader(Path.Combine(dir, prefix + CheckpointFormat.SharedFile)))
        {
            foreach (var (name, t) in CheckpointFormat.SharedTensors(model, layers))
            {
                if (routers.TryGetValue(name, out var layer) && shared.Contains(name)
                    && shared.Tensors[name].Shape[0] != t.shape[0])
                {
                    // A model holding fewer experts than stored (pruning) keeps the router rows of its experts.
                    using var full = shared.Read(name);
                    var rowIds = experts?.Invoke(layer.Index, layer.Layer.Experts) ?? AllExperts(layer.Index, layer.Layer.Experts);
                    using var ids = TorchSharp.torch.tensor(rowIds.Select(i => (long)i).ToArray());
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
            using var stored = ExpertFiles.Open(dir, files, layer.Index, prefix);
            var ids = Ids(layer, experts);
            foreach (var p in CheckpointFormat.ExpertParams)
            {
                var stacked = CheckpointFormat.ExpertParameter(layer, p);
                for (int j = 0; j < ids.Count; j++)
                {
                    using var slot = stacked[j];
                    var key = CheckpointFormat.ExpertTensor(ids[j], p);
                    stored.For(key).ReadInto(key, slot);
                }
            }
        }
    }

    private static IReadOnlyList<int> Ids(MoeLayerRef layer, ExpertSelector? experts) => experts is null
        ? Enumerable.Range(layer.Layer.FirstExpert, layer.Layer.LocalExperts).ToList()
        : experts(layer.Index, layer.Layer.LocalExperts);

    /// <summary>Whether checkpoint <paramref name="dir"/> holds the moving average of its weights.</summary>
    public static bool HasEma(string dir) => FileNames(dir).Contains(CheckpointFormat.EmaPrefix + CheckpointFormat.SharedFile);

    /// <summary>Files the manifest lists (a stray file in the directory is never read).</summary>
    private static IReadOnlyList<string> FileNames(string dir)
        => ((JsonObject)CheckpointReader.ReadManifest(dir)["files"]!).Select(kv => kv.Key).ToList();

    /// <summary>The files holding one MoE layer's experts, indexed by tensor name.</summary>
    private sealed class ExpertFiles : IDisposable
    {
        private readonly List<SafeTensors.Reader> readers = [];
        private readonly Dictionary<string, SafeTensors.Reader> byTensor = new(StringComparer.Ordinal);
        private string dir = "";
        private int layer;

        public static ExpertFiles Open(string dir, IReadOnlyList<string> names, int layer, string prefix)
        {
            var mine = names.Where(n => CheckpointFormat.IsExpertFileOf(n, layer, prefix)).Order(StringComparer.Ordinal).ToList();
            if (mine.Count == 0)
            {
                var expected = Path.Combine(dir, prefix + CheckpointFormat.ExpertFile(layer));
                throw new UserInputException($"{expected}: missing; the checkpoint has fewer MoE layers than the model config");
            }
            var files = new ExpertFiles { dir = dir, layer = layer };
            try
            {
                foreach (var name in mine)
                {
                    var reader = new SafeTensors.Reader(Path.Combine(dir, name));
                    files.readers.Add(reader);
                    foreach (var tensor in reader.Tensors.Keys)
                        files.byTensor.TryAdd(tensor, reader);
                }
            }
            catch
            {
                files.Dispose();
                throw;
            }
            return files;
        }

        public SafeTensors.Reader For(string tensor) => byTensor.TryGetValue(tensor, out var r)
            ? r
            : throw new UserInputException($"{dir}: no expert file of MoE layer {layer} holds '{tensor}'; the checkpoint has " +
                                           "fewer experts than the model config");

        public void Dispose() => readers.ForEach(r => r.Dispose());
    }

    /// <summary>Expert counts per MoE layer recorded in a manifest.</summary>
    public static int[] ExpertCounts(JsonObject manifest)
        => manifest["moe_layers"] is JsonArray a ? a.Select(l => l!["experts"]!.GetValue<int>()).ToArray() : [];
}
