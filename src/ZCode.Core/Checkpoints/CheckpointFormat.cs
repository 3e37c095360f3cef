using TorchSharp.Modules;
using ZCode.Model;
using ZCode.Model.Moe;
using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>An MoE layer of a model: its index in <see cref="Seq2SeqTransformer.MoeLayers"/> (the L in
/// experts-LNN) and its module path (state-dict prefix).</summary>
public sealed record MoeLayerRef(int Index, string Prefix, MoeLayer Layer);

/// <summary>
/// File and tensor naming of the v1 checkpoint format. Non-expert tensors (routers included: every
/// rank holds the whole router) go to shared.safetensors under their state-dict names. Expert tensors go to one
/// file per MoE layer, one tensor per expert under its GLOBAL expert id (expert.7.w1), so a loader can take any
/// subset: that is what lets a different expert-parallel size, aggregation and pruning reuse the files.
/// Optimizer state mirrors this with .exp_avg / .exp_avg_sq / .step suffixes, and the moving average of the weights
/// with the same names in ema-* files.
/// </summary>
public static class CheckpointFormat
{
    public const string Version = "zcode-checkpoint-v1";
    public const string SharedFile = "shared.safetensors";
    public const string OptimizerSharedFile = "optimizer-shared.safetensors";
    /// <summary>Prefix of the files of a second set of weights with the model's names: the exponential moving average.</summary>
    public const string EmaPrefix = "ema-";
    /// <summary>Prefix of the optimizer state's files.</summary>
    public const string OptimizerPrefix = "optimizer-";
    public static readonly string[] ExpertParams = ["w1", "b1", "w2", "b2"];

    public static string ExpertFile(int layer) => $"experts-L{layer:D2}.safetensors";
    public static string OptimizerExpertFile(int layer) => $"optimizer-experts-L{layer:D2}.safetensors";

    /// <summary>File of the experts [first, first+count) of MoE layer <paramref name="layer"/> out of <paramref name="experts"/>:
    /// the whole layer is <see cref="ExpertFile(int)"/>; an expert-parallel rank's block is experts-LNN-eFFF-LLL.safetensors
    /// (first and last global id). Names depend on global ids only, so ranks name their files without coordinating.</summary>
    public static string ExpertFile(int layer, int first, int count, int experts)
        => count == experts ? ExpertFile(layer) : $"experts-L{layer:D2}{BlockSuffix(first, count)}.safetensors";

    /// <summary>Optimizer-state counterpart of <see cref="ExpertFile(int, int, int, int)"/>.</summary>
    public static string OptimizerExpertFile(int layer, int first, int count, int experts)
        => count == experts ? OptimizerExpertFile(layer) : $"optimizer-experts-L{layer:D2}{BlockSuffix(first, count)}.safetensors";

    /// <summary>Whether <paramref name="file"/> holds experts of MoE layer <paramref name="layer"/> (the whole layer or a
    /// block) in the file set of <paramref name="prefix"/>: "" for the weights, <see cref="OptimizerPrefix"/>,
    /// <see cref="EmaPrefix"/>.</summary>
    public static bool IsExpertFileOf(string file, int layer, string prefix = "")
        => System.Text.RegularExpressions.Regex.IsMatch(file,
            $@"^{System.Text.RegularExpressions.Regex.Escape(prefix)}experts-L{layer:D2}(-e\d+-\d+)?\.safetensors$");

    private static string BlockSuffix(int first, int count) => $"-e{first:D3}-{first + count - 1:D3}";
    public static string ExpertTensor(int globalExpert, string param) => $"expert.{globalExpert}.{param}";

    public static IReadOnlyList<MoeLayerRef> MoeLayers(Seq2SeqTransformer model)
    {
        var layers = model.MoeLayers;
        var prefixes = model.named_modules().Where(m => m.module is MoeLayer).ToDictionary(m => (MoeLayer)m.module, m => m.name);
        return layers.Select((l, i) => new MoeLayerRef(i, prefixes[l], l)).ToList();
    }

    /// <summary>State-dict names of all expert parameters (stacked [E, ...] tensors).</summary>
    public static HashSet<string> ExpertParameterNames(IEnumerable<MoeLayerRef> layers)
        => layers.SelectMany(l => ExpertParams.Select(p => $"{l.Prefix}.{p}")).ToHashSet(StringComparer.Ordinal);

    /// <summary>Non-expert state (parameters and buffers) in state-dict order.</summary>
    public static List<(string Name, Tensor Tensor)> SharedTensors(Seq2SeqTransformer model, IReadOnlyList<MoeLayerRef> layers)
    {
        var experts = ExpertParameterNames(layers);
        return model.state_dict().Where(kv => !experts.Contains(kv.Key)).Select(kv => (kv.Key, kv.Value)).ToList();
    }

    /// <summary>The stacked expert parameter <paramref name="param"/> of a layer (w1 [E, d, ffn] ...).</summary>
    public static Parameter ExpertParameter(MoeLayerRef layer, string param)
        => layer.Layer.named_parameters().First(p => p.name == param).parameter;
}
