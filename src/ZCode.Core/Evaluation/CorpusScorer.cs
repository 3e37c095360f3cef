using System.Text.Json.Nodes;
using ZCode.Evaluation.Metrics;

namespace ZCode.Evaluation;

/// <summary>Which metrics to compute and their settings (the options of <c>zcode score</c>).</summary>
public sealed record ScoringOptions
{
    public BleuOptions Bleu { get; init; } = new();
    public ChrfOptions Chrf { get; init; } = new();
    public bool ComputeBleu { get; init; } = true;
    public bool ComputeChrf { get; init; } = true;

    /// <summary>Parses a comma-separated metric list ("bleu,chrf"); unknown names are a <see cref="UserInputException"/>.</summary>
    public static (bool Bleu, bool Chrf) ParseMetrics(string list)
    {
        bool bleu = false, chrf = false;
        foreach (var raw in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            switch (raw.ToLowerInvariant())
            {
                case "bleu": bleu = true; break;
                case "chrf": chrf = true; break;
                default: throw new UserInputException($"--metrics: unknown metric '{raw}': use bleu, chrf or bleu,chrf");
            }
        }
        if (!bleu && !chrf) throw new UserInputException("--metrics: name at least one of bleu, chrf");
        return (bleu, chrf);
    }
}

/// <summary>The corpus-level scores of one system output.</summary>
public sealed record CorpusScores(BleuScore? Bleu, ChrfScore? Chrf)
{
    /// <summary>sacreBLEU's text lines (BLEU first, as sacreBLEU sorts metric names).</summary>
    public IEnumerable<string> TextLines(int width = 1)
    {
        if (Bleu is not null) yield return Bleu.Format(width);
        if (Chrf is not null) yield return Chrf.Format(width);
    }

    /// <summary><c>{"bleu": {score, counts, totals, precisions, bp, sys_len, ref_len, signature}, "chrf": {score, signature}}</c>.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject();
        if (Bleu is not null)
            json["bleu"] = new JsonObject
            {
                ["score"] = Bleu.Score,
                ["counts"] = new JsonArray(Bleu.Counts.Select(c => (JsonNode)JsonValue.Create(c)).ToArray()),
                ["totals"] = new JsonArray(Bleu.Totals.Select(c => (JsonNode)JsonValue.Create(c)).ToArray()),
                ["precisions"] = new JsonArray(Bleu.Precisions.Select(c => (JsonNode)JsonValue.Create(c)).ToArray()),
                ["bp"] = Bleu.Bp,
                ["sys_len"] = Bleu.SysLen,
                ["ref_len"] = Bleu.RefLen,
                ["signature"] = Bleu.Signature,
            };
        if (Chrf is not null)
            json["chrf"] = new JsonObject { ["score"] = Chrf.Score, ["signature"] = Chrf.Signature };
        return json;
    }
}

/// <summary>Scores hypotheses against one or more reference streams with the configured metrics.</summary>
public static class CorpusScorer
{
    /// <summary>Corpus scores; every reference stream must have as many lines as the hypotheses.</summary>
    public static CorpusScores Score(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references,
        ScoringOptions options)
    {
        if (references.Count == 0) throw new UserInputException("at least one reference is needed");
        foreach (var r in references)
            if (r.Count != hypotheses.Count)
                throw new UserInputException($"{hypotheses.Count} hypotheses but a reference stream has {r.Count} lines");
        return new CorpusScores(
            options.ComputeBleu ? new Bleu(options.Bleu).Corpus(hypotheses, references) : null,
            options.ComputeChrf ? new Chrf(options.Chrf).Corpus(hypotheses, references) : null);
    }

    /// <summary>Per-sentence scores (BLEU with effective order, as sacreBLEU's --sentence-level).</summary>
    public static IEnumerable<CorpusScores> Sentences(IReadOnlyList<string> hypotheses,
        IReadOnlyList<IReadOnlyList<string>> references, ScoringOptions options)
    {
        var bleu = options.ComputeBleu ? new Bleu(options.Bleu with { EffectiveOrder = true }) : null;
        var chrf = options.ComputeChrf ? new Chrf(options.Chrf) : null;
        for (int i = 0; i < hypotheses.Count; i++)
        {
            var refs = references.Select(r => r[i]).ToList();
            yield return new CorpusScores(bleu?.Sentence(hypotheses[i], refs), chrf?.Sentence(hypotheses[i], refs));
        }
    }
}
