namespace ZCode.Data;

/// <summary>
/// mBART-style noise for denoising auto-encoding: text infilling (spans with Poisson(λ) lengths are masked until
/// <c>mask_ratio</c> of the tokens are covered, each span replaced by a single <c>&lt;mask&gt;</c>), optionally after
/// permuting the sentences of the line. The decoder reconstructs the original ids.
/// </summary>
public sealed class DaeNoise
{
    private readonly double _ratio;
    private readonly double _expMinusLambda;
    private readonly int _maskId;
    private readonly bool _permute;
    private readonly bool[] _sentenceEnd;

    /// <param name="maskRatio">Fraction of tokens to cover with spans (0..1; tasks.dae.mask_ratio, range-checked by ConfigValidator).</param>
    /// <param name="lambda">Poisson mean of the span length (tasks.dae.poisson_lambda, positive).</param>
    /// <param name="maskId">Id of <c>&lt;mask&gt;</c>.</param>
    /// <param name="permuteSentences">Shuffle the sentences (split after sentence-final pieces) before masking.</param>
    /// <param name="sentenceEnd">Per id: whether the piece ends a sentence (only used when permuting).</param>
    public DaeNoise(double maskRatio, double lambda, int maskId, bool permuteSentences = false, bool[]? sentenceEnd = null)
    {
        _ratio = maskRatio;
        _expMinusLambda = Math.Exp(-lambda);
        _maskId = maskId;
        _permute = permuteSentences;
        _sentenceEnd = sentenceEnd ?? [];
    }

    /// <summary>The noised copy of <paramref name="tokens"/> (no tags, no EOS). Deterministic given <paramref name="rng"/>.</summary>
    public int[] Apply(ReadOnlySpan<int> tokens, DeterministicRandom rng) => Apply(tokens, rng, out _);

    /// <summary>As <see cref="Apply(ReadOnlySpan{int}, DeterministicRandom)"/>, also returning the span lengths used.</summary>
    public int[] Apply(ReadOnlySpan<int> tokens, DeterministicRandom rng, out List<int> spans)
    {
        var x = _permute ? PermuteSentences(tokens, rng) : tokens.ToArray();
        var n = x.Length;
        spans = new List<int>();
        var toMask = (int)Math.Round(_ratio * n, MidpointRounding.AwayFromZero);
        if (toMask == 0) return x;
        var covered = 0;
        while (covered < toMask)
        {
            // Zero-length spans (mBART's insertions) are skipped: every span here covers at least one token.
            var length = Poisson(rng);
            if (length == 0) continue;
            length = Math.Min(length, toMask - covered);
            spans.Add(length);
            covered += length;
        }
        var unmasked = n - toMask;
        // Spans must be separated by an unmasked token (else two would read as one mask): merge the last ones while
        // there are more spans than gaps.
        while (spans.Count > unmasked + 1)
        {
            spans[^2] += spans[^1];
            spans.RemoveAt(spans.Count - 1);
        }
        // Each span goes after a distinct number of unmasked tokens (a random k-subset of 0..unmasked).
        var slots = new int[unmasked + 1];
        for (var i = 0; i < slots.Length; i++) slots[i] = i;
        for (var i = 0; i < spans.Count; i++)
        {
            var j = i + rng.NextInt(slots.Length - i);
            (slots[i], slots[j]) = (slots[j], slots[i]);
        }
        Array.Sort(slots, 0, spans.Count);

        var result = new int[unmasked + spans.Count];
        int pos = 0, outPos = 0, kept = 0;
        for (var s = 0; s < spans.Count; s++)
        {
            while (kept < slots[s]) { result[outPos++] = x[pos++]; kept++; }
            result[outPos++] = _maskId;
            pos += spans[s];
        }
        while (pos < n) result[outPos++] = x[pos++];
        return result;
    }

    // Knuth's multiplication method: fine for the small λ used here (mBART: 3.5).
    private int Poisson(DeterministicRandom rng)
    {
        var k = 0;
        var p = rng.NextDouble();
        while (p > _expMinusLambda)
        {
            k++;
            p *= rng.NextDouble();
        }
        return k;
    }

    private int[] PermuteSentences(ReadOnlySpan<int> tokens, DeterministicRandom rng)
    {
        var sentences = new List<(int Start, int Length)>();
        var start = 0;
        for (var i = 0; i < tokens.Length; i++)
            if ((uint)tokens[i] < (uint)_sentenceEnd.Length && _sentenceEnd[tokens[i]])
            {
                sentences.Add((start, i + 1 - start));
                start = i + 1;
            }
        if (start < tokens.Length) sentences.Add((start, tokens.Length - start));
        if (sentences.Count < 2) return tokens.ToArray();
        rng.Shuffle(sentences);
        var result = new int[tokens.Length];
        var k = 0;
        foreach (var (s, l) in sentences)
        {
            tokens.Slice(s, l).CopyTo(result.AsSpan(k));
            k += l;
        }
        return result;
    }
}
