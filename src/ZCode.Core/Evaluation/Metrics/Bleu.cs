namespace ZCode.Evaluation.Metrics;

/// <summary>BLEU settings with sacreBLEU 2.x's defaults (tokenize 13a, exp smoothing, order 4, mixed case).</summary>
public sealed record BleuOptions
{
    public string Tokenize { get; init; } = "13a";
    public bool Lowercase { get; init; }
    /// <summary>exp (default, NIST/mteval), floor, add-k or none.</summary>
    public string SmoothMethod { get; init; } = "exp";
    /// <summary>Value for floor (default 0.1) or add-k (default 1); null = the method's default.</summary>
    public double? SmoothValue { get; init; }
    public int MaxNgramOrder { get; init; } = 4;
    /// <summary>Average only over n-gram orders that have candidates (sentence-level BLEU turns it on).</summary>
    public bool EffectiveOrder { get; init; }

    public static readonly IReadOnlyList<string> SmoothMethods = ["exp", "floor", "add-k", "none"];

    /// <summary>The smoothing value actually used (sacreBLEU's SMOOTH_DEFAULTS), or null for exp/none.</summary>
    public double? EffectiveSmoothValue => SmoothMethod switch
    {
        "floor" => SmoothValue ?? 0.1,
        "add-k" => SmoothValue ?? 1.0,
        _ => null,
    };

    public void Validate()
    {
        if (!SmoothMethods.Contains(SmoothMethod))
            throw new UserInputException($"unknown smoothing method '{SmoothMethod}': use one of {string.Join(", ", SmoothMethods)}");
        if (MaxNgramOrder < 1) throw new UserInputException($"max n-gram order must be >= 1, got {MaxNgramOrder}");
        if (!SacreTokenizers.Names.Contains(Tokenize)) SacreTokenizers.Create(Tokenize);
    }
}

/// <summary>A BLEU result with sacreBLEU's fields; <see cref="Counts"/>/<see cref="Totals"/> after add-k smoothing.</summary>
public sealed record BleuScore(double Score, double[] Counts, double[] Totals, double[] Precisions, double Bp,
    long SysLen, long RefLen, string Signature)
{
    public double Ratio => RefLen > 0 ? (double)SysLen / RefLen : 0;

    /// <summary>sacreBLEU's text line: <c>BLEU|sig = 20.4 55.6/28.6/16.7/7.1 (BP = 1.000 ratio = ... ref_len = 9)</c>.</summary>
    public string Format(int width = 1)
    {
        var prec = string.Join('/', Precisions.Select(p => PyText.Fixed(p, 1)));
        return $"BLEU|{Signature} = {PyText.Fixed(Score, width)} {prec} (BP = {PyText.Fixed(Bp, 3)} " +
               $"ratio = {PyText.Fixed(Ratio, 3)} hyp_len = {SysLen} ref_len = {RefLen})";
    }
}

/// <summary>
/// BLEU exactly as sacreBLEU 2.x computes it (metrics/bleu.py): per segment, hypothesis n-gram counts clipped by the
/// maximum count over the references, the closest reference length (the shorter on ties); corpus statistics are
/// summed; BP = exp(1 - r/c) when c &lt; r; precisions smoothed by the chosen method; score = BP * geometric mean.
/// </summary>
public sealed class Bleu
{
    /// <summary>The sacreBLEU release whose semantics and signature format this follows.</summary>
    public const string SacreBleuVersion = "2.6.0";

    private readonly BleuOptions options;
    private readonly ISacreTokenizer tokenizer;

    public Bleu(BleuOptions? options = null)
    {
        this.options = options ?? new BleuOptions();
        this.options.Validate();
        tokenizer = SacreTokenizers.Create(this.options.Tokenize);
    }

    /// <summary>Signature, e.g. <c>nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0</c>.</summary>
    public string Signature(int refCount)
    {
        var smooth = options.SmoothMethod;
        if (options.EffectiveSmoothValue is { } v) smooth += $"[{PyText.Fixed(v, 2)}]";
        return $"nrefs:{refCount}|case:{(options.Lowercase ? "lc" : "mixed")}|eff:{(options.EffectiveOrder ? "yes" : "no")}" +
               $"|tok:{tokenizer.Name}|smooth:{smooth}|version:{SacreBleuVersion}";
    }

    /// <summary>Corpus BLEU; <paramref name="references"/> holds one list per reference set, each aligned with the hypotheses.</summary>
    public BleuScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references)
    {
        int n = options.MaxNgramOrder;
        var stats = new long[2 + 2 * n];
        for (int i = 0; i < hypotheses.Count; i++)
        {
            var segment = SegmentStatistics(hypotheses[i], references.Select(r => r[i]).ToList());
            for (int k = 0; k < stats.Length; k++) stats[k] += segment[k];
        }
        return FromStatistics(stats, references.Count);
    }

    /// <summary>BLEU of one sentence against its references (use <see cref="BleuOptions.EffectiveOrder"/>).</summary>
    public BleuScore Sentence(string hypothesis, IReadOnlyList<string> references)
        => FromStatistics(SegmentStatistics(hypothesis, references), references.Count);

    private string Preprocess(string sentence)
        => tokenizer.Tokenize(PyText.RStrip(options.Lowercase ? PyText.Lower(sentence) : sentence));

    /// <summary>[hyp_len, ref_len, correct_1..N, total_1..N] for one segment.</summary>
    private long[] SegmentStatistics(string hypothesis, IReadOnlyList<string> references)
    {
        int n = options.MaxNgramOrder;
        Dictionary<string, int>[]? refNgrams = null;
        var refLens = new List<int>();
        foreach (var reference in references)
        {
            var (ngrams, len) = Ngrams(Preprocess(reference), n);
            refLens.Add(len);
            if (refNgrams is null) refNgrams = ngrams;
            else
                for (int order = 0; order < n; order++)
                    foreach (var (g, c) in ngrams[order])
                        refNgrams[order][g] = Math.Max(refNgrams[order].GetValueOrDefault(g), c);
        }
        refNgrams ??= Ngrams("", n).Ngrams;
        var (hypNgrams, hypLen) = Ngrams(Preprocess(hypothesis), n);

        // Closest reference length; on equal distance the shorter one.
        int closestDiff = -1, closestLen = -1;
        foreach (var len in refLens)
        {
            int diff = Math.Abs(hypLen - len);
            if (closestDiff == -1 || diff < closestDiff) { closestDiff = diff; closestLen = len; }
            else if (diff == closestDiff && len < closestLen) closestLen = len;
        }

        var stats = new long[2 + 2 * n];
        stats[0] = hypLen;
        stats[1] = closestLen;
        for (int order = 0; order < n; order++)
            foreach (var (g, count) in hypNgrams[order])
            {
                stats[2 + n + order] += count;
                if (refNgrams[order].TryGetValue(g, out var refCount))
                    stats[2 + order] += Math.Min(count, refCount);
            }
        return stats;
    }

    /// <summary>Counts of the n-grams of each order 1..maxOrder (index order-1) of the whitespace tokens; a key is
    /// its tokens joined by a space, unambiguous because tokens never contain whitespace.</summary>
    private static (Dictionary<string, int>[] Ngrams, int Length) Ngrams(string line, int maxOrder)
    {
        var tokens = PyText.Split(line).ToArray();
        var counts = new Dictionary<string, int>[maxOrder];
        for (int order = 1; order <= maxOrder; order++)
        {
            var c = counts[order - 1] = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i + order <= tokens.Length; i++)
            {
                var key = string.Join(' ', tokens, i, order);
                c[key] = c.GetValueOrDefault(key) + 1;
            }
        }
        return (counts, tokens.Length);
    }

    private BleuScore FromStatistics(long[] stats, int refCount)
    {
        int n = options.MaxNgramOrder;
        var correct = stats.Skip(2).Take(n).Select(x => (double)x).ToArray();
        var total = stats.Skip(2 + n).Take(n).Select(x => (double)x).ToArray();
        return Compute(correct, total, stats[0], stats[1], options, Signature(refCount));
    }

    /// <summary>sacreBLEU's <c>compute_bleu</c> on sufficient statistics (mutates correct/total for add-k, as it does).</summary>
    public static BleuScore Compute(double[] correct, double[] total, long sysLen, long refLen, BleuOptions options,
        string signature = "")
    {
        int maxOrder = correct.Length;
        double smoothValue = options.EffectiveSmoothValue ?? 0;
        double bp = 1.0;
        if (sysLen < refLen) bp = sysLen > 0 ? Math.Exp(1 - (double)refLen / sysLen) : 0.0;
        var precisions = new double[maxOrder];
        // No match at all: 0 whatever the smoothing (sacreBLEU #141).
        if (correct.All(c => c == 0))
            return new BleuScore(0.0, correct, total, precisions, bp, sysLen, refLen, signature);

        double smoothMteval = 1.0;
        int effOrder = maxOrder;
        for (int k = 1; k <= maxOrder; k++)
        {
            if (options.SmoothMethod == "add-k" && k > 1)
            {
                correct[k - 1] += smoothValue;
                total[k - 1] += smoothValue;
            }
            if (total[k - 1] == 0) break;
            if (options.EffectiveOrder) effOrder = k;
            if (correct[k - 1] == 0)
            {
                if (options.SmoothMethod == "exp")
                {
                    smoothMteval *= 2;
                    precisions[k - 1] = 100.0 / (smoothMteval * total[k - 1]);
                }
                else if (options.SmoothMethod == "floor")
                    precisions[k - 1] = 100.0 * smoothValue / total[k - 1];
            }
            else
                precisions[k - 1] = 100.0 * correct[k - 1] / total[k - 1];
        }
        double logSum = 0;
        for (int k = 0; k < effOrder; k++)
            logSum += precisions[k] == 0 ? -9999999999.0 : Math.Log(precisions[k]);
        double score = bp * Math.Exp(logSum / effOrder);
        return new BleuScore(score, correct, total, precisions, bp, sysLen, refLen, signature);
    }
}
