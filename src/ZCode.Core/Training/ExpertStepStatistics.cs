using ZCode.Model.Moe;

namespace ZCode.Training;

/// <summary>
/// Expert load and dropped fraction of one optimizer step, over all of its micro-batches (on every rank: the counts
/// are summed across ranks before <see cref="Result"/>): per MoE layer the fraction of kept assignments per expert,
/// and the mean over layers of dropped / routed assignments.
/// </summary>
public sealed class ExpertStepStatistics
{
    private readonly IReadOnlyList<MoeLayer> layers;
    private readonly double[][] kept;
    private readonly double[] dropped;
    private readonly double[] assigned;

    public ExpertStepStatistics(IReadOnlyList<MoeLayer> layers)
    {
        this.layers = layers;
        kept = layers.Select(l => new double[l.Experts]).ToArray();
        dropped = new double[layers.Count];
        assigned = new double[layers.Count];
    }

    /// <summary>Adds every layer's last forward.</summary>
    public void Add()
    {
        for (int i = 0; i < layers.Count; i++)
        {
            if (layers[i].LastStats is not { } s) continue;
            for (int e = 0; e < s.TokensPerExpert.Length && e < kept[i].Length; e++) kept[i][e] += s.TokensPerExpert[e];
            dropped[i] += s.Dropped;
            assigned[i] += (double)s.Routed * layers[i].TopK;
        }
    }

    /// <summary>Adds the counts to <paramref name="sums"/> (for one reduction over the ranks).</summary>
    public void AddTo(NamedSums sums)
    {
        for (int i = 0; i < layers.Count; i++)
        {
            for (int e = 0; e < kept[i].Length; e++) sums.Add($"experts/{i}/kept/{e}", kept[i][e]);
            sums.Add($"experts/{i}/dropped", dropped[i]);
            sums.Add($"experts/{i}/assigned", assigned[i]);
        }
    }

    /// <summary>Replaces the counts with those of <paramref name="sums"/> (after the reduction).</summary>
    public void TakeFrom(NamedSums sums)
    {
        for (int i = 0; i < layers.Count; i++)
        {
            for (int e = 0; e < kept[i].Length; e++) kept[i][e] = sums[$"experts/{i}/kept/{e}"];
            dropped[i] = sums[$"experts/{i}/dropped"];
            assigned[i] = sums[$"experts/{i}/assigned"];
        }
    }

    public (double[][] Load, double Dropped) Result()
    {
        var load = kept.Select(row =>
        {
            double total = Math.Max(1, row.Sum());
            return row.Select(n => n / total).ToArray();
        }).ToArray();
        double drop = 0;
        for (int i = 0; i < layers.Count; i++) drop += assigned[i] > 0 ? dropped[i] / assigned[i] : 0;
        return (load, layers.Count > 0 ? drop / layers.Count : 0);
    }
}
