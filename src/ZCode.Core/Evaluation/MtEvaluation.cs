using ZCode.Config;
using ZCode.Text;

namespace ZCode.Evaluation;

/// <summary>One translation direction of an evaluation split: raw text files, read whole (no line is skipped).</summary>
public sealed record EvalDirection(string Src, string Tgt, string SrcPath, string TgtPath)
{
    public string Name => $"{Src}-{Tgt}";
}

/// <summary>The result of one direction: scores, counts, speed and the detokenized hypotheses.</summary>
public sealed record DirectionResult(EvalDirection Direction, CorpusScores Scores, int Sentences, long Tokens,
    double Seconds, IReadOnlyList<string> Hypotheses)
{
    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;
}

/// <summary>Finds the evaluation directions of a config and scores a direction's translations.</summary>
public static class MtEvaluation
{
    /// <summary>Splits that configs can name (there is no data.test list yet).</summary>
    public static readonly IReadOnlyList<string> Splits = ["valid"];

    /// <summary>
    /// Directions of <c>data.&lt;split&gt;</c> in config order (each entry, then its reverse when
    /// <c>data.both_directions</c>), restricted to <paramref name="pairs"/> ("en-de,deu_Latn-eng_Latn") when given.
    /// </summary>
    public static List<EvalDirection> Directions(ZCodeConfig config, string split, string? pairs)
    {
        if (split != "valid")
            throw new UserInputException($"--split {split}: the config has no data.{split} section; available: {string.Join(", ", Splits)}");
        var all = new List<EvalDirection>();
        for (int i = 0; i < config.Data.Valid.Count; i++)
        {
            var e = config.Data.Valid[i];
            string src = Resolve(e.Src, $"data.valid[{i}].src"), tgt = Resolve(e.Tgt, $"data.valid[{i}].tgt");
            string srcPath = config.ResolvePath(e.SrcPath), tgtPath = config.ResolvePath(e.TgtPath);
            Add(all, new EvalDirection(src, tgt, srcPath, tgtPath));
            if (config.Data.BothDirections) Add(all, new EvalDirection(tgt, src, tgtPath, srcPath));
        }
        if (all.Count == 0) throw new UserInputException("data.valid is empty: nothing to evaluate");
        if (string.IsNullOrWhiteSpace(pairs)) return all;

        var chosen = new List<EvalDirection>();
        foreach (var pair in pairs.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var sides = pair.Split('-');
            if (sides.Length != 2) throw new UserInputException($"--pairs: '{pair}' is not SRC-TGT (e.g. en-de)");
            string src = Resolve(sides[0], $"--pairs {pair}"), tgt = Resolve(sides[1], $"--pairs {pair}");
            var match = all.FirstOrDefault(d => d.Src == src && d.Tgt == tgt)
                ?? throw new UserInputException($"--pairs: {src}-{tgt} is not in data.{split}; available: {string.Join(", ", all.Select(d => d.Name))}");
            if (!chosen.Contains(match)) chosen.Add(match);
        }
        return chosen;
    }

    // Two valid entries may give the same direction (e.g. a pair listed both ways with both_directions): keep the first.
    private static void Add(List<EvalDirection> list, EvalDirection d)
    {
        if (!list.Any(x => x.Src == d.Src && x.Tgt == d.Tgt)) list.Add(d);
    }

    private static string Resolve(string language, string key)
    {
        try { return Languages.Resolve(language); }
        catch (UserInputException e) { throw new UserInputException($"{key}: {e.Message}"); }
    }

    /// <summary>Source and reference lines of a direction; their counts must agree.</summary>
    public static (List<string> Sources, List<string> References) ReadLines(EvalDirection d)
    {
        var sources = TextLines.Read(d.SrcPath);
        var references = TextLines.Read(d.TgtPath);
        if (sources.Count != references.Count)
            throw new UserInputException($"{d.SrcPath} has {sources.Count} lines but {d.TgtPath} has {references.Count}: parallel files must be aligned");
        return (sources, references);
    }

    /// <summary>Translates a direction with <paramref name="translate"/> and scores the result (the path of <c>zcode eval</c>).</summary>
    public static DirectionResult Evaluate(EvalDirection direction, IReadOnlyList<string> sources, IReadOnlyList<string> references,
        Func<IReadOnlyList<string>, (string[] Output, long Tokens, TimeSpan Elapsed)> translate, ScoringOptions scoring)
    {
        var (hyps, tokens, elapsed) = translate(sources);
        var scores = CorpusScorer.Score(hyps, [references], scoring);
        return new DirectionResult(direction, scores, sources.Count, tokens, elapsed.TotalSeconds, hyps);
    }
}
