using System.Text.Json;

namespace ZCode.Training;

/// <summary>What <c>zcode plot</c> needs from a run's metrics.jsonl: loss curves (training and validation), per-layer expert balance and
/// per-language expert usage averaged over the run.</summary>
public sealed class MetricsLog
{
    public List<int> Steps { get; } = new();
    public List<double> Loss { get; } = new();
    public List<double> NllLoss { get; } = new();
    /// <summary>Per logged step, per MoE layer: max / mean kept tokens per expert (1 = perfectly balanced).</summary>
    public List<double[]> LoadImbalance { get; } = new();
    /// <summary>Steps and NLL per token of the validation records.</summary>
    public List<(int Step, double ValidLoss)> Validations { get; } = new();
    /// <summary>Per target language, per layer, per expert: usage averaged over the logged intervals that saw it.</summary>
    public Dictionary<string, double[][]> UsageByLanguage { get; } = new(StringComparer.Ordinal);

    /// <summary>Reads <paramref name="path"/>; a malformed line is a <see cref="UserInputException"/> naming it.</summary>
    public static MetricsLog Read(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: not found (is --run a zcode train output directory?)");
        var log = new MetricsLog();
        var sums = new Dictionary<string, (double[][] Sum, int[] Count)>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                if (r.TryGetProperty("type", out var type) && type.GetString() == "valid")
                {
                    log.Validations.Add((r.GetProperty("step").GetInt32(), r.GetProperty("valid_loss").GetDouble()));
                    continue;
                }
                log.Steps.Add(r.GetProperty("step").GetInt32());
                log.Loss.Add(r.GetProperty("loss").GetDouble());
                log.NllLoss.Add(r.TryGetProperty("nll_loss", out var nll) ? nll.GetDouble() : double.NaN);
                var load = r.TryGetProperty("expert_load", out var l) ? Matrix(l) : [];
                log.LoadImbalance.Add(load.Select(Imbalance).ToArray());
                if (r.TryGetProperty("expert_usage_by_lang", out var usage))
                    foreach (var lang in usage.EnumerateObject())
                        Accumulate(sums, lang.Name, Matrix(lang.Value));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new UserInputException($"{path}:{lineNo}: not a zcode metrics record ({e.Message})");
            }
        }
        foreach (var (lang, (sum, count)) in sums)
            log.UsageByLanguage[lang] = sum.Select((row, i) => row.Select(v => count[i] > 0 ? v / count[i] : 0).ToArray()).ToArray();
        return log;
    }

    /// <summary>Number of MoE layers seen in the usage records.</summary>
    public int UsageLayers => UsageByLanguage.Count == 0 ? 0 : UsageByLanguage.Values.Max(v => v.Length);

    private static double Imbalance(double[] fractions)
    {
        if (fractions.Length == 0) return double.NaN;
        double mean = fractions.Average();
        return mean > 0 ? fractions.Max() / mean : double.NaN;
    }

    private static double[][] Matrix(JsonElement e) =>
        e.EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();

    private static void Accumulate(Dictionary<string, (double[][] Sum, int[] Count)> sums, string lang, double[][] layers)
    {
        if (!sums.TryGetValue(lang, out var acc))
            sums[lang] = acc = (new double[layers.Length][], new int[layers.Length]);
        if (acc.Sum.Length < layers.Length)
        {
            var grown = (Sum: new double[layers.Length][], Count: new int[layers.Length]);
            Array.Copy(acc.Sum, grown.Sum, acc.Sum.Length);
            Array.Copy(acc.Count, grown.Count, acc.Count.Length);
            sums[lang] = acc = grown;
        }
        for (int i = 0; i < layers.Length; i++)
        {
            if (layers[i].Length == 0 || layers[i].Sum() == 0) continue;   // the language had no tokens in that layer
            acc.Sum[i] ??= new double[layers[i].Length];
            for (int e = 0; e < layers[i].Length && e < acc.Sum[i].Length; e++) acc.Sum[i][e] += layers[i][e];
            acc.Count[i]++;
        }
        for (int i = 0; i < acc.Sum.Length; i++) acc.Sum[i] ??= [];
    }
}
