namespace ZCode.Data;

/// <summary>
/// Temperature sampling over directions (or languages, tasks): p_i ∝ n_i^(1/T). T = 1 samples in proportion to
/// the data; large T approaches uniform; the paper's recipe uses T = 5. Draws take a
/// <see cref="DeterministicRandom"/>, so the stream is fixed by its seed and state.
/// </summary>
public sealed class TemperatureSampler
{
    private readonly double[] _cumulative;

    /// <param name="counts">n_i ≥ 0, at least one positive.</param>
    /// <param name="temperature">T &gt; 0.</param>
    public TemperatureSampler(IReadOnlyList<long> counts, double temperature)
        : this(ComputeProbabilities(counts, temperature)) { }

    /// <summary>A sampler for given probabilities (non-negative, summing to 1), e.g. from <see cref="TaskMixture"/>.</summary>
    public TemperatureSampler(IReadOnlyList<double> probabilities)
    {
        ArgumentNullException.ThrowIfNull(probabilities);
        if (probabilities.Count == 0 || probabilities.Any(p => !(p >= 0)) || Math.Abs(probabilities.Sum() - 1) > 1e-9)
            throw new ArgumentException("probabilities must be non-negative and sum to 1", nameof(probabilities));
        Probabilities = probabilities.ToArray();
        _cumulative = new double[Probabilities.Count];
        var sum = 0.0;
        for (var i = 0; i < _cumulative.Length; i++)
        {
            sum += Probabilities[i];
            _cumulative[i] = sum;
        }
        // Rounding guard: from the last positive entry on, every u < 1 falls at or before it.
        var last = Probabilities.Count - 1;
        while (Probabilities[last] == 0) last--;
        for (var i = last; i < _cumulative.Length; i++) _cumulative[i] = double.PositiveInfinity;
    }

    public IReadOnlyList<double> Probabilities { get; }

    /// <summary>Index i with probability p_i.</summary>
    public int Sample(DeterministicRandom rng)
    {
        var u = rng.NextDouble();
        var i = Array.BinarySearch(_cumulative, u);
        i = i >= 0 ? i + 1 : ~i; // first index with cumulative > u
        while (Probabilities[i] == 0) i++;
        return i;
    }

    /// <summary>p_i = n_i^(1/T) / Σ_j n_j^(1/T), computed in log space (no overflow for any T).</summary>
    public static double[] ComputeProbabilities(IReadOnlyList<long> counts, double temperature)
    {
        ArgumentNullException.ThrowIfNull(counts);
        if (counts.Count == 0) throw new ArgumentException("no counts", nameof(counts));
        if (!(temperature > 0) || double.IsInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "temperature must be a positive number");
        if (counts.Any(c => c < 0)) throw new ArgumentException("counts must be non-negative", nameof(counts));
        if (counts.All(c => c == 0)) throw new ArgumentException("at least one count must be positive", nameof(counts));
        var logs = counts.Select(c => c > 0 ? Math.Log(c) / temperature : double.NegativeInfinity).ToArray();
        var max = logs.Max();
        var w = logs.Select(l => double.IsNegativeInfinity(l) ? 0.0 : Math.Exp(l - max)).ToArray();
        var sum = w.Sum();
        return w.Select(x => x / sum).ToArray();
    }
}
