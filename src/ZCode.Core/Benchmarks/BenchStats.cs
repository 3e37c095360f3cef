namespace ZCode.Benchmarks;

/// <summary>Small helpers for timing loops.</summary>
public static class BenchStats
{
    /// <summary>Median of the samples (mean of the middle two for an even count).</summary>
    public static double Median(IReadOnlyList<double> samples)
    {
        if (samples.Count == 0) throw new ArgumentException("no samples", nameof(samples));
        var sorted = samples.OrderBy(v => v).ToArray();
        int m = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    }
}
