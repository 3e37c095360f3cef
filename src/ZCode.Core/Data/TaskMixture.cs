namespace ZCode.Data;

/// <summary>
/// Sampling probabilities over the sets of several tasks: a task is picked by its weight (tasks.*.weight), then a
/// set within it by temperature (p_i ∝ n_i^(1/T) over that task's sets). The product is one distribution over all
/// sets, which <see cref="TokenBudgetBatcher"/> draws from.
/// </summary>
public static class TaskMixture
{
    /// <param name="sets">All sets; <see cref="IExampleSet.Task"/> groups them.</param>
    /// <param name="weights">Weight per task name; tasks with weight 0 (or absent) get no draws.</param>
    /// <param name="temperature">T for the within-task distribution.</param>
    public static double[] Probabilities(IReadOnlyList<IExampleSet> sets, IReadOnlyDictionary<string, double> weights,
        double temperature)
    {
        ArgumentNullException.ThrowIfNull(sets);
        ArgumentNullException.ThrowIfNull(weights);
        var result = new double[sets.Count];
        var active = sets.Select(s => s.Task).Distinct()
            .Where(t => weights.TryGetValue(t, out var w) && w > 0).ToList();
        if (active.Count == 0) throw new ArgumentException("no task with a positive weight has data", nameof(weights));
        var total = active.Sum(t => weights[t]);
        foreach (var task in active)
        {
            var members = Enumerable.Range(0, sets.Count).Where(i => sets[i].Task == task).ToArray();
            var p = TemperatureSampler.ComputeProbabilities(members.Select(i => (long)sets[i].Count).ToArray(), temperature);
            for (var j = 0; j < members.Length; j++) result[members[j]] = weights[task] / total * p[j];
        }
        return result;
    }
}
