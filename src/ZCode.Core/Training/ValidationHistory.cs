using System.Text.Json.Nodes;
using ZCode.Evaluation;

namespace ZCode.Training;

/// <summary>One validation of a run: its step and the figures <c>train.best_metric</c> can name.</summary>
public sealed record ValidationRecord(int Step, double ValidLoss, double Bleu, double Chrf)
{
    public double Metric(string metric) => metric switch
    {
        "valid_loss" => ValidLoss,
        "bleu" => Bleu,
        "chrf" => Chrf,
        _ => throw new ArgumentException($"unknown metric {metric}", nameof(metric)),
    };
}

/// <summary>
/// A run's validations and what they decided: the best value of <c>train.best_metric</c> and its step, and how many
/// validations since have not improved on it (early stopping stops at <c>train.patience</c>). Saved in every
/// checkpoint's manifest (<see cref="ToJson"/>), so a resumed run keeps its best and its patience counter.
/// </summary>
public sealed class ValidationHistory
{
    private readonly List<ValidationRecord> records = [];

    public ValidationHistory(string metric) => Metric = metric;

    public string Metric { get; }
    public IReadOnlyList<ValidationRecord> Records => records;
    public ValidationRecord? Best { get; private set; }
    /// <summary>Validations since the best one.</summary>
    public int SinceBest { get; private set; }

    /// <summary>Adds the validation of <paramref name="step"/>; returns whether it is the new best.</summary>
    public bool Add(int step, ValidationResult result) => Add(new ValidationRecord(step, result.ValidLoss, result.Bleu, result.Chrf));

    private bool Add(ValidationRecord record)
    {
        records.Add(record);
        bool improved = ValidationResult.Improves(Metric, record.Metric(Metric), Best?.Metric(Metric));
        if (improved)
        {
            Best = record;
            SinceBest = 0;
        }
        else
            SinceBest++;
        return improved;
    }

    /// <summary>Steps of the <paramref name="n"/> best validations, best first (ties: the earlier step).</summary>
    public IEnumerable<int> BestSteps(int n)
    {
        var ordered = Metric == "valid_loss"
            ? records.OrderBy(r => r.Metric(Metric))
            : records.OrderByDescending(r => r.Metric(Metric));
        return ordered.ThenBy(r => r.Step).Take(n).Select(r => r.Step);
    }

    public JsonObject ToJson() => new()
    {
        ["metric"] = Metric,
        ["best_step"] = Best?.Step,
        ["best_value"] = Best?.Metric(Metric),
        ["since_best"] = SinceBest,
        ["history"] = new JsonArray(records.Select(r => (JsonNode)new JsonObject
        {
            ["step"] = r.Step, ["valid_loss"] = r.ValidLoss, ["bleu"] = r.Bleu, ["chrf"] = r.Chrf,
        }).ToArray()),
    };

    /// <summary>The history saved in a manifest (null when it holds none), for <paramref name="metric"/>: a run resumed
    /// with another best_metric re-decides its best from the same records.</summary>
    public static ValidationHistory? FromJson(JsonNode? node, string metric)
    {
        if (node?["history"] is not JsonArray history) return null;
        var h = new ValidationHistory(metric);
        foreach (var r in history)
            h.Add(new ValidationRecord(r!["step"]!.GetValue<int>(), r["valid_loss"]!.GetValue<double>(), r["bleu"]!.GetValue<double>(),
                r["chrf"]!.GetValue<double>()));
        return h;
    }
}
