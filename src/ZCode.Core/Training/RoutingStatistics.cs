using ZCode.Data;
using ZCode.Model.Moe;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// Router statistics accumulated over a log interval (DESIGN.md §5 "Statistics", §12): per MoE layer the mean router
/// entropy, and per target language which experts its tokens are routed to. A row's target language counts for its
/// encoder tokens too (the source carries the target-language tag), so the usage shows language specialisation in
/// both stacks. Usage counts the router's choices of real tokens, all k of them, before capacity dropping: it is
/// what the router wants, while <c>expert_load</c> is what the experts kept.
/// </summary>
public sealed class RoutingStatistics
{
    private readonly Dictionary<string, long[][]> usage = new(StringComparer.Ordinal);
    private double[] entropySum = [];
    private int forwards;

    /// <summary>Adds the last forward of every layer in <paramref name="layers"/> (call inside the micro-batch's
    /// dispose scope, after the forward). One host synchronisation per layer.</summary>
    public void Add(IReadOnlyList<MoeLayer> layers, Batch batch)
    {
        if (entropySum.Length != layers.Count) entropySum = new double[layers.Count];
        var rowLang = batch.Examples.Select(e => e.TgtLang).ToArray();
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            if (layer.RouterEntropy is { } h) entropySum[i] += h.item<float>();
            if (layer.LastRouting is { } r && layer.LastInputShape.Length == 2 && layer.LastInputShape[0] == rowLang.Length)
                AddUsage(i, layers.Count, layer.Experts, r, layer.LastInputShape[1], rowLang);
        }
        forwards++;
    }

    private void AddUsage(int layerIndex, int layerCount, int experts, MoeRoutingResult r, long rowLength, string[] rowLang)
    {
        if (r.ExpertIndex.numel() == 0) return;
        long rows = rowLang.Length;
        using var scope = NewDisposeScope();
        // Row-major [B, L] input: token t belongs to row t / L. Masked slots (position -1) are not counted.
        var real = r.Position.ge(0);
        var key = (r.TokenIndex.div(rowLength, rounding_mode: RoundingMode.floor) * experts + r.ExpertIndex)
            .masked_select(real);
        var counts = key.bincount(null, rows * experts);
        using var host = counts.cpu().data<long>();
        var values = host.ToArray();
        for (int row = 0; row < rows; row++)
        {
            if (!usage.TryGetValue(rowLang[row], out var perLayer))
                usage[rowLang[row]] = perLayer = new long[layerCount][];
            perLayer[layerIndex] ??= new long[experts];
            for (int e = 0; e < experts; e++) perLayer[layerIndex][e] += values[row * experts + e];
        }
    }

    /// <summary>Mean router entropy per layer (nats) since the last <see cref="Reset"/>.</summary>
    public double[] RouterEntropy() => entropySum.Select(v => forwards == 0 ? 0 : v / forwards).ToArray();

    /// <summary>Per target language, per layer, the fraction of that language's routed assignments each expert
    /// received since the last <see cref="Reset"/> (rows sum to 1; a layer with no tokens gives zeros).</summary>
    public Dictionary<string, double[][]> ExpertUsageByLanguage() => usage
        .OrderBy(kv => kv.Key, StringComparer.Ordinal)
        .ToDictionary(kv => kv.Key, kv => kv.Value.Select(layer =>
        {
            if (layer is null) return Array.Empty<double>();
            double total = layer.Sum();
            return layer.Select(n => total > 0 ? n / total : 0.0).ToArray();
        }).ToArray(), StringComparer.Ordinal);

    /// <summary>Per layer, max/mean of the routed assignments per expert (all languages) since the last
    /// <see cref="Reset"/>: 1 is perfect balance, E is everything on one expert. This is the load the balancing loss
    /// acts on (f_e is measured before dropping); kept-token load is capped by the capacity and understates it.</summary>
    public double[] LoadImbalance()
    {
        int layers = usage.Values.Select(v => v.Length).DefaultIfEmpty(0).Max();
        var result = new double[layers];
        for (int i = 0; i < layers; i++)
        {
            long[]? total = null;
            foreach (var perLayer in usage.Values)
            {
                if (perLayer[i] is not { } counts) continue;
                total ??= new long[counts.Length];
                for (int e = 0; e < counts.Length; e++) total[e] += counts[e];
            }
            double mean = total is null ? 0 : total.Average();
            result[i] = mean > 0 ? total!.Max() / mean : 0;
        }
        return result;
    }

    /// <summary>Appends entropy sums, the forward count and the usage counts of <paramref name="langs"/> (every layer,
    /// every expert; zeros where unseen) to <paramref name="into"/>: the same layout on every rank.</summary>
    public void Pack(List<double> into, IReadOnlyList<MoeLayer> layers, IEnumerable<string> langs)
    {
        if (entropySum.Length != layers.Count) entropySum = new double[layers.Count];
        into.AddRange(entropySum);
        into.Add(forwards);
        foreach (var lang in langs)
        {
            usage.TryGetValue(lang, out var perLayer);
            for (int i = 0; i < layers.Count; i++)
                for (int e = 0; e < layers[i].Experts; e++)
                    into.Add(perLayer?[i] is { } row && e < row.Length ? row[e] : 0);
        }
    }

    /// <summary>Replaces the interval's statistics with those packed by <see cref="Pack"/> (after reduction).</summary>
    public void Unpack(double[] from, IReadOnlyList<MoeLayer> layers, IEnumerable<string> langs)
    {
        int at = 0;
        for (int i = 0; i < entropySum.Length; i++) entropySum[i] = from[at++];
        forwards = (int)from[at++];
        usage.Clear();
        foreach (var lang in langs)
        {
            var perLayer = new long[layers.Count][];
            bool any = false;
            for (int i = 0; i < layers.Count; i++)
            {
                perLayer[i] = new long[layers[i].Experts];
                for (int e = 0; e < layers[i].Experts; e++) any |= (perLayer[i][e] = (long)from[at++]) > 0;
            }
            if (any) usage[lang] = perLayer;
        }
    }

    public void Reset()
    {
        usage.Clear();
        Array.Clear(entropySum);
        forwards = 0;
    }
}
