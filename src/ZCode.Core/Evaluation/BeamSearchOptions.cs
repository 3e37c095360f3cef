namespace ZCode.Evaluation;

/// <summary>
/// Beam search settings (fairseq semantics). Hypothesis score = sum of token log-probabilities (EOS included)
/// divided by length^<see cref="LengthPenalty"/>, length counting EOS. A hypothesis has at most
/// min(<see cref="MaxLenA"/> * source length + <see cref="MaxLenB"/>, max_positions - 1) tokens before its EOS; the
/// source length counts every source id (tag and EOS included), as fairseq's src_lengths do.
/// </summary>
public sealed record BeamSearchOptions
{
    /// <summary>Hypotheses kept per sentence; 1 is greedy decoding.</summary>
    public int Beam { get; init; } = 4;
    public double LengthPenalty { get; init; } = 1.0;
    public double MaxLenA { get; init; } = 1.2;
    public int MaxLenB { get; init; } = 10;
    /// <summary>EOS is forbidden before this many tokens.</summary>
    public int MinLen { get; init; }
    /// <summary>Forbid repeating any n-gram of this size within a hypothesis; 0 = off.</summary>
    public int NoRepeatNgram { get; init; }
    /// <summary>Use the key/value cache (the fast path); false recomputes the decoder over the prefix each step.</summary>
    public bool UseCache { get; init; } = true;

    /// <summary>Throws <see cref="UserInputException"/> for settings outside their ranges (named like the eval.* keys).</summary>
    public void Validate()
    {
        if (Beam < 1) throw new UserInputException($"beam must be >= 1, got {Beam}");
        if (double.IsNaN(LengthPenalty) || double.IsInfinity(LengthPenalty))
            throw new UserInputException($"length_penalty must be a finite number, got {LengthPenalty}");
        if (!(MaxLenA >= 0) || double.IsInfinity(MaxLenA)) throw new UserInputException($"max_len_a must be >= 0, got {MaxLenA}");
        if (MaxLenB < 0) throw new UserInputException($"max_len_b must be >= 0, got {MaxLenB}");
        if (MinLen < 0) throw new UserInputException($"min_len must be >= 0, got {MinLen}");
        if (NoRepeatNgram < 0) throw new UserInputException($"no_repeat_ngram must be >= 0, got {NoRepeatNgram}");
    }
}

/// <summary>One decoded sentence: token ids without BOS/EOS and the length-normalised score.</summary>
public sealed record Hypothesis(int[] Tokens, double Score);
