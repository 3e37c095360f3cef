namespace ZCode.Evaluation.Metrics;

/// <summary>chrF settings with sacreBLEU 2.x's defaults: char order 6, word order 0 (2 = chrF++), beta 2.</summary>
public sealed record ChrfOptions
{
    public int CharOrder { get; init; } = 6;
    public int WordOrder { get; init; }
    public int Beta { get; init; } = 2;
    public bool Lowercase { get; init; }
    /// <summary>Keep whitespace inside character n-grams (off by default).</summary>
    public bool Whitespace { get; init; }
    /// <summary>chrF++.py/NLTK epsilon smoothing instead of sacreBLEU's default effective-order averaging.</summary>
    public bool EpsSmoothing { get; init; }

    public void Validate()
    {
        if (CharOrder < 0 || WordOrder < 0 || CharOrder + WordOrder < 1)
            throw new UserInputException($"chrF needs char order + word order >= 1 (got {CharOrder} and {WordOrder})");
        if (Beta < 0) throw new UserInputException($"chrF beta must be >= 0, got {Beta}");
    }
}

/// <summary>A chrF result: name (chrF2, chrF2++), score in [0, 100] and signature.</summary>
public sealed record ChrfScore(string Name, double Score, string Signature)
{
    /// <summary>sacreBLEU's text line, e.g. <c>chrF2|nrefs:1|...|version:2.6.0 = 58.3</c>.</summary>
    public string Format(int width = 1) => $"{Name}|{Signature} = {PyText.Fixed(Score, width)}";
}

/// <summary>
/// chrF/chrF++ exactly as sacreBLEU 2.x (metrics/chrf.py): character n-grams of code points (whitespace removed unless
/// kept), optional word n-grams after splitting one leading/trailing ASCII punctuation mark off each word; per segment
/// the reference with the best F-score is used; corpus statistics are summed per order; by default precision and recall
/// are averaged over the orders where both sides have n-grams, then F-beta.
/// </summary>
public sealed class Chrf
{
    private const string Puncts = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    private readonly ChrfOptions options;

    public Chrf(ChrfOptions? options = null)
    {
        this.options = options ?? new ChrfOptions();
        this.options.Validate();
    }

    private int Order => options.CharOrder + options.WordOrder;

    public string Name => $"chrF{options.Beta}" + new string('+', options.WordOrder);

    /// <summary>Signature, e.g. <c>nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0</c>.</summary>
    public string Signature(int refCount) =>
        $"nrefs:{refCount}|case:{(options.Lowercase ? "lc" : "mixed")}|eff:{(options.EpsSmoothing ? "no" : "yes")}" +
        $"|nc:{options.CharOrder}|nw:{options.WordOrder}|space:{(options.Whitespace ? "yes" : "no")}|version:{Bleu.SacreBleuVersion}";

    /// <summary>Corpus chrF; <paramref name="references"/> holds one list per reference set.</summary>
    public ChrfScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references)
    {
        var stats = new long[3 * Order];
        for (int i = 0; i < hypotheses.Count; i++)
        {
            var segment = SegmentStatistics(hypotheses[i], references.Select(r => r[i]).ToList());
            for (int k = 0; k < stats.Length; k++) stats[k] += segment[k];
        }
        return new ChrfScore(Name, FScore(stats), Signature(references.Count));
    }

    public ChrfScore Sentence(string hypothesis, IReadOnlyList<string> references)
        => new(Name, FScore(SegmentStatistics(hypothesis, references)), Signature(references.Count));

    /// <summary>[hyp, ref, match] per order (char orders first) against the best-scoring reference.</summary>
    private long[] SegmentStatistics(string hypothesis, IReadOnlyList<string> references)
    {
        var hyp = Ngrams(Preprocess(hypothesis));
        long[] best = new long[3 * Order];
        double bestF = -1;
        foreach (var reference in references)
        {
            var refNgrams = Ngrams(Preprocess(reference));
            var stats = new long[3 * Order];
            for (int k = 0; k < Order; k++)
            {
                long hypCount = 0, match = 0;
                foreach (var (g, c) in hyp[k])
                {
                    hypCount += c;
                    if (refNgrams[k].TryGetValue(g, out var rc)) match += Math.Min(c, rc);
                }
                // No reference n-gram of this order: the hypothesis's do not count (sacreBLEU does the same).
                stats[3 * k] = refNgrams[k].Count > 0 ? hypCount : 0;
                stats[3 * k + 1] = refNgrams[k].Values.Sum();
                stats[3 * k + 2] = match;
            }
            double f = FScore(stats);
            if (f > bestF)
            {
                bestF = f;
                best = stats;
            }
        }
        return best;
    }

    private string Preprocess(string s) => options.Lowercase ? PyText.Lower(s) : s;

    private List<Dictionary<string, int>> Ngrams(string line)
    {
        var result = new List<Dictionary<string, int>>();
        var text = options.Whitespace ? line : string.Concat(PyText.Split(line));
        // Code-point boundaries, so an n-gram never splits a surrogate pair (Python counts code points).
        var starts = new List<int>();
        for (int i = 0; i < text.Length; i++)
            if (!(char.IsLowSurrogate(text[i]) && i > 0 && char.IsHighSurrogate(text[i - 1]))) starts.Add(i);
        starts.Add(text.Length);
        int cps = starts.Count - 1;
        for (int n = 1; n <= options.CharOrder; n++)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i + n <= cps; i++)
            {
                var g = text.Substring(starts[i], starts[i + n] - starts[i]);
                counts[g] = counts.GetValueOrDefault(g) + 1;
            }
            result.Add(counts);
        }
        if (options.WordOrder > 0)
        {
            var words = SplitPunctuation(line);
            for (int n = 1; n <= options.WordOrder; n++)
            {
                var counts = new Dictionary<string, int>(StringComparer.Ordinal);
                for (int i = 0; i + n <= words.Count; i++)
                {
                    var g = string.Join(' ', words.Skip(i).Take(n));
                    counts[g] = counts.GetValueOrDefault(g) + 1;
                }
                result.Add(counts);
            }
        }
        return result;
    }

    /// <summary>chrF++'s word split: a trailing (else a leading) ASCII punctuation mark becomes its own word.</summary>
    private static List<string> SplitPunctuation(string sentence)
    {
        var words = new List<string>();
        foreach (var w in PyText.Split(sentence))
        {
            if (PyText.CodePoints(w).Length == 1) words.Add(w);
            else if (Puncts.Contains(w[^1])) { words.Add(w[..^1]); words.Add(w[^1..]); }
            else if (Puncts.Contains(w[0])) { words.Add(w[..1]); words.Add(w[1..]); }
            else words.Add(w);
        }
        return words;
    }

    private double FScore(long[] stats)
    {
        const double eps = 1e-16;
        double factor = (double)options.Beta * options.Beta;
        double score = 0, avgPrec = 0, avgRec = 0;
        int effectiveOrder = 0;
        for (int k = 0; k < Order; k++)
        {
            long nHyp = stats[3 * k], nRef = stats[3 * k + 1], nMatch = stats[3 * k + 2];
            double prec = nHyp > 0 ? (double)nMatch / nHyp : eps;
            double rec = nRef > 0 ? (double)nMatch / nRef : eps;
            double denom = factor * prec + rec;
            score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
            if (nHyp > 0 && nRef > 0)
            {
                avgPrec += prec;
                avgRec += rec;
                effectiveOrder++;
            }
        }
        if (options.EpsSmoothing) return 100 * score / Order;
        if (effectiveOrder == 0) return 0.0;
        avgPrec /= effectiveOrder;
        avgRec /= effectiveOrder;
        if (avgPrec + avgRec == 0) return 0.0;
        // Same operation order as sacreBLEU, so the last bits agree too.
        double f = (1 + factor) * avgPrec * avgRec;
        f /= factor * avgPrec + avgRec;
        return 100 * f;
    }
}
