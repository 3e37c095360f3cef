using ZCode.Parallel;

namespace ZCode.Training;

/// <summary>
/// Figures summed over the ranks by name: each rank adds its contributions under names ("loss", "expert_kept/0/3",
/// "tokens_by_lang/deu_Latn"), <see cref="Reduce"/> sums every name over the world in one all-reduce, and readers
/// take the global values by name. Every rank must add the same names (the trainer derives them from the global batch,
/// which every rank sees); the reduction checks that they do, so a mismatch fails loudly instead of mixing figures.
/// </summary>
public sealed class NamedSums
{
    private readonly SortedDictionary<string, double> values = new(StringComparer.Ordinal);

    /// <summary>Adds <paramref name="value"/> to the sum named <paramref name="name"/> (created at 0).</summary>
    public void Add(string name, double value) => values[name] = values.GetValueOrDefault(name) + value;

    /// <summary>The sum named <paramref name="name"/>, 0 when nothing was added under it.</summary>
    public double this[string name] => values.GetValueOrDefault(name);

    public bool Contains(string name) => values.ContainsKey(name);

    /// <summary>Names in ordinal order.</summary>
    public IEnumerable<string> Names => values.Keys;

    /// <summary>Replaces every sum by its total over <paramref name="world"/> (a collective: every rank calls it with
    /// the same names). Throws when the ranks' names differ.</summary>
    public void Reduce(ICommunicator world)
    {
        if (world.Size == 1) return;
        var names = values.Keys.ToList();
        // Two extra slots carry how many names each rank has and a hash of them: equal on every rank, they sum to
        // size x the local value exactly (small integers in float64).
        var packed = values.Values.Append(names.Count).Append(NamesHash(names)).ToArray();
        var total = HostCollectives.AllReduceSum(world, packed);
        if (total[^2] != (double)names.Count * world.Size || total[^1] != NamesHash(names) * world.Size)
            throw new InvalidOperationException($"rank {world.Rank}: the ranks reduced different figure names ({names.Count} here)");
        for (int i = 0; i < names.Count; i++)
            values[names[i]] = total[i];
    }

    /// <summary>A hash of the names that fits a float64 exactly (below 2^31), the same on every rank and run.</summary>
    private static double NamesHash(IEnumerable<string> names)
    {
        uint h = 2166136261;
        foreach (var c in string.Join('\n', names))
            h = (h ^ c) * 16777619;
        return h & 0x7FFFFFFF;
    }
}
