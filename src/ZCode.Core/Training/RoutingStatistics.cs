using ZCode.Data;
using ZCode.Model.Moe;
using ZCode.Runtime;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// Router statistics accumulated over a log interval: per MoE layer the mean router
/// entropy, and per target language which experts its tokens are routed to. A row's target language counts for its
/// encoder tokens too (the source carries the target-language tag), so the usage shows language specialisation in
/// both stacks. Usage counts the router's choices of real tokens, all k of them, before capacity dropping: it is
/// what the router wants, while <c>expert_load</c> is what the experts kept.
/// <para>The sums live on the model's device and are only read back (once per interval, kept on the host until the
/// next <see cref="Add"/> or <see cref="Reset"/>) by the readers and <see cref="AddTo"/>, which the trainer calls at log
/// steps only, so accumulating never waits for the device. Under data parallelism each rank accumulates its own
/// micro-batches; at a log step <see cref="AddTo"/>, one reduction by name and <see cref="TakeFrom"/> make them global.</para>
/// </summary>
public sealed class RoutingStatistics : IDisposable
{
    private const int InitialLanguages = 16;
    private readonly Dictionary<string, int> languageIndex = new(StringComparer.Ordinal);
    private Tensor? entropySum;             // [layers] fp32
    private Tensor?[] usage = [];           // per layer [languages, E] int64
    private int forwards;

    /// <summary>The language index of every row of <paramref name="batch"/> (its target language), for
    /// <see cref="Add"/>; new languages get the next index.</summary>
    public long[] RowLanguages(Batch batch)
    {
        var rows = new long[batch.Size];
        for (int r = 0; r < rows.Length; r++)
        {
            var lang = batch.Examples[r].TgtLang;
            if (!languageIndex.TryGetValue(lang, out var i))
                languageIndex[lang] = i = languageIndex.Count;
            rows[r] = i;
        }
        return rows;
    }

    /// <summary>Adds the last forward of <paramref name="layers"/> for <paramref name="batch"/>, uploading its row
    /// languages (the trainer uploads them with the batch instead and calls the other overload).</summary>
    public void Add(IReadOnlyList<MoeLayer> layers, Batch batch)
    {
        var device = layers.Select(l => l.LastRouting?.ExpertIndex.device).FirstOrDefault(d => d is not null) ?? CPU;
        using var rows = HostTransfers.Upload(RowLanguages(batch), [batch.Size], device);
        Add(layers, rows);
    }

    /// <summary>Adds the last forward of every layer in <paramref name="layers"/> (call inside the micro-batch's
    /// dispose scope, after the forward); <paramref name="rowLanguages"/> [B] int64 on the model's device holds
    /// <see cref="RowLanguages"/> of the batch. Device operations only.</summary>
    public void Add(IReadOnlyList<MoeLayer> layers, Tensor rowLanguages)
    {
        snapshot = null;
        if (layers.Count == 0) { forwards++; return; }
        var device = rowLanguages.device;
        if (entropySum is null || entropySum.shape[0] != layers.Count || entropySum.device_type != device.type
            || entropySum.device_index != device.index)
        {
            entropySum?.Dispose();
            entropySum = zeros(layers.Count, ScalarType.Float32, device).DetachFromDisposeScope();
            foreach (var u in usage) u?.Dispose();
            usage = new Tensor?[layers.Count];
        }
        long rows = rowLanguages.shape[0];
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            for (int i = 0; i < layers.Count; i++)
            {
                var layer = layers[i];
                if (layer.RouterEntropy is { } h) entropySum.narrow(0, i, 1).add_(h.reshape(1));
                if (layer.LastRouting is { } r && r.ExpertIndex.numel() > 0 && layer.LastInputShape.Length == 2
                    && layer.LastInputShape[0] == rows)
                    AddUsage(i, layer.Experts, r, layer.LastInputShape[1], rowLanguages);
            }
        }
        forwards++;
    }

    private void AddUsage(int layerIndex, int experts, MoeRoutingResult r, long rowLength, Tensor rowLanguages)
    {
        int languages = Math.Max(InitialLanguages, languageIndex.Count);
        var current = usage[layerIndex];
        if (current is null || current.shape[0] < languageIndex.Count)
        {
            var grown = zeros(new long[] { languages * 2, experts }, ScalarType.Int64, rowLanguages.device);
            if (current is not null) grown.narrow(0, 0, current.shape[0]).copy_(current);
            current?.Dispose();
            usage[layerIndex] = current = grown.DetachFromDisposeScope();
        }
        // Row-major [B, L] input: token t belongs to row t / L. Masked slots (position -1) add a zero weight.
        var row = r.TokenIndex.div(rowLength, rounding_mode: RoundingMode.floor);
        var key = rowLanguages.index_select(0, row) * experts + r.ExpertIndex;
        var real = r.Position.ge(0).to(ScalarType.Int64);
        var flat = current.view(-1);
        flat.index_add_(0, key, real, 1);
    }

    /// <summary>Mean router entropy per layer (nats) since the last <see cref="Reset"/>.</summary>
    public double[] RouterEntropy()
    {
        var snap = Read();
        return snap.EntropySums.Select(v => snap.Forwards == 0 ? 0 : v / snap.Forwards).ToArray();
    }

    /// <summary>Per target language, per layer, the fraction of that language's routed assignments each expert
    /// received since the last <see cref="Reset"/> (rows sum to 1; a layer with no tokens gives zeros).</summary>
    public Dictionary<string, double[][]> ExpertUsageByLanguage()
    {
        var result = new Dictionary<string, double[][]>(StringComparer.Ordinal);
        foreach (var (lang, perLayer) in Read().Usage.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            result[lang] = perLayer.Select(counts =>
            {
                double total = counts.Sum();
                return counts.Select(n => total > 0 ? n / total : 0.0).ToArray();
            }).ToArray();
        return result;
    }

    /// <summary>Per layer, max/mean of the routed assignments per expert (all languages) since the last
    /// <see cref="Reset"/>: 1 is perfect balance, E is everything on one expert. This is the load the balancing loss
    /// acts on (f_e is measured before dropping); kept-token load is capped by the capacity and understates it.
    /// Empty when nothing was routed.</summary>
    public double[] LoadImbalance()
    {
        var usageByLang = Read().Usage;
        int layers = usageByLang.Values.Select(v => v.Length).DefaultIfEmpty(0).Max();
        var result = new double[layers];
        for (int i = 0; i < layers; i++)
        {
            long[]? total = null;
            foreach (var perLayer in usageByLang.Values)
            {
                if (i >= perLayer.Length || perLayer[i].Length == 0) continue;
                var counts = perLayer[i];
                total ??= new long[counts.Length];
                for (int e = 0; e < counts.Length && e < total.Length; e++) total[e] += counts[e];
            }
            double mean = total is null ? 0 : total.Average();
            result[i] = mean > 0 ? total!.Max() / mean : 0;
        }
        return result;
    }

    /// <summary>Adds entropy sums, the forward count and the usage counts of <paramref name="langs"/> (every layer,
    /// every expert; zeros where unseen) to <paramref name="sums"/>: the same names on every rank, for one reduction.
    /// Reads the device (call it at logged steps only).</summary>
    public void AddTo(NamedSums sums, IReadOnlyList<MoeLayer> layers, IEnumerable<string> langs)
    {
        var snap = Read();
        for (int i = 0; i < layers.Count; i++)
            sums.Add($"routing/entropy/{i}", i < snap.EntropySums.Length ? snap.EntropySums[i] : 0);
        sums.Add("routing/forwards", snap.Forwards);
        foreach (var lang in langs)
        {
            snap.Usage.TryGetValue(lang, out var perLayer);
            for (int i = 0; i < layers.Count; i++)
                for (int e = 0; e < layers[i].Experts; e++)
                    sums.Add(UsageName(lang, i, e), perLayer is not null && i < perLayer.Length && e < perLayer[i].Length ? perLayer[i][e] : 0);
        }
    }

    /// <summary>Replaces the interval's statistics with those of <paramref name="sums"/> (after reduction) until the
    /// next <see cref="Add"/> or <see cref="Reset"/>; the device sums are left alone.</summary>
    public void TakeFrom(NamedSums sums, IReadOnlyList<MoeLayer> layers, IEnumerable<string> langs)
    {
        var entropy = Enumerable.Range(0, layers.Count).Select(i => sums[$"routing/entropy/{i}"]).ToArray();
        var usageByLang = new Dictionary<string, long[][]>(StringComparer.Ordinal);
        foreach (var lang in langs)
        {
            var perLayer = layers.Select((l, i) => Enumerable.Range(0, l.Experts).Select(e => (long)sums[UsageName(lang, i, e)]).ToArray()).ToArray();
            if (perLayer.Any(counts => counts.Any(n => n > 0))) usageByLang[lang] = perLayer;
        }
        snapshot = new Snapshot(entropy, (int)sums["routing/forwards"], usageByLang);
    }

    private static string UsageName(string lang, int layer, int expert) => $"routing/usage/{lang}/{layer}/{expert}";

    /// <summary>Host copy of the interval's statistics: entropy sums per layer, the forward count, and per language
    /// that has any routed token the per-layer counts per expert (an empty array for a layer without usage).</summary>
    private sealed record Snapshot(double[] EntropySums, int Forwards, Dictionary<string, long[][]> Usage);

    private Snapshot? snapshot;

    /// <summary>The interval's statistics, read from the device once (one read for the entropy sums, one per MoE
    /// layer for the usage) and kept until the next <see cref="Add"/> or <see cref="Reset"/>.</summary>
    private Snapshot Read()
    {
        if (snapshot is not null) return snapshot;
        var entropy = entropySum is null ? [] : HostTransfers.Read<float>(entropySum).Select(v => (double)v).ToArray();
        var perLayer = usage.Select(u => u is null ? ((long[] Counts, int Experts)?)null : (HostTransfers.Read<long>(u), (int)u.shape[1])).ToArray();
        var usageByLang = new Dictionary<string, long[][]>(StringComparer.Ordinal);
        foreach (var (lang, index) in languageIndex)
        {
            var layers = perLayer.Select(l => l is not { } c || (index + 1) * c.Experts > c.Counts.Length
                ? Array.Empty<long>()
                : c.Counts.AsSpan(index * c.Experts, c.Experts).ToArray()).ToArray();
            if (layers.Any(l => l.Sum() > 0))
                usageByLang[lang] = layers;
        }
        return snapshot = new Snapshot(entropy, forwards, usageByLang);
    }

    /// <summary>Starts a new interval (zeroes the device sums in place; no read).</summary>
    public void Reset()
    {
        snapshot = null;
        entropySum?.zero_();
        foreach (var u in usage) u?.zero_();
        forwards = 0;
    }

    public void Dispose()
    {
        entropySum?.Dispose();
        foreach (var u in usage) u?.Dispose();
    }
}
