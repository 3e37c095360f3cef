using ZCode.Data;
using ZCode.Model.Moe;
using ZCode.Runtime;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// Router statistics accumulated over a log interval (DESIGN.md §5 "Statistics", §12): per MoE layer the mean router
/// entropy, and per target language which experts its tokens are routed to. A row's target language counts for its
/// encoder tokens too (the source carries the target-language tag), so the usage shows language specialisation in
/// both stacks. Usage counts the router's choices of real tokens, all k of them, before capacity dropping: it is
/// what the router wants, while <c>expert_load</c> is what the experts kept.
/// <para>The sums live on the model's device and are only read back by <see cref="RouterEntropy"/> and
/// <see cref="ExpertUsageByLanguage"/> (at log steps), so accumulating never waits for the device.</para>
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

    /// <summary>Mean router entropy per layer (nats) since the last <see cref="Reset"/> (one device read).</summary>
    public double[] RouterEntropy()
    {
        if (entropySum is null) return [];
        var sums = HostTransfers.Read<float>(entropySum);
        return sums.Select(v => forwards == 0 ? 0 : (double)v / forwards).ToArray();
    }

    /// <summary>Per target language, per layer, the fraction of that language's routed assignments each expert
    /// received since the last <see cref="Reset"/> (rows sum to 1; a layer with no tokens gives zeros). One device
    /// read per MoE layer.</summary>
    public Dictionary<string, double[][]> ExpertUsageByLanguage()
    {
        var perLayer = usage.Select(u => u is null ? null : new LayerCounts(HostTransfers.Read<long>(u), (int)u.shape[1])).ToArray();
        var result = new Dictionary<string, double[][]>(StringComparer.Ordinal);
        foreach (var (lang, index) in languageIndex.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var layers = perLayer.Select(l =>
            {
                if (l is not { } c) return Array.Empty<double>();
                var counts = c.Counts.AsSpan(index * c.Experts, c.Experts).ToArray();
                double total = counts.Sum();
                return counts.Select(n => total > 0 ? n / total : 0.0).ToArray();
            }).ToArray();
            if (layers.Any(l => l.Sum() > 0))
                result[lang] = layers;
        }
        return result;
    }

    private sealed record LayerCounts(long[] Counts, int Experts);

    /// <summary>Starts a new interval (zeroes the device sums in place; no read).</summary>
    public void Reset()
    {
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
