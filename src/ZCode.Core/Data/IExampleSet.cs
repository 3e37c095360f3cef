namespace ZCode.Data;

/// <summary>
/// Random access to the examples of one direction of one task (e.g. MT eng_Latn→deu_Latn) over the memory-mapped
/// shards of <c>zcode data prepare</c> (<see cref="ShardMtSet"/>, <see cref="DaeSet"/>). The samplers and batchers
/// only see this interface.
/// </summary>
public interface IExampleSet
{
    /// <summary>Direction name, e.g. <c>mt:eng_Latn-deu_Latn</c>; unique among the sets of a run.</summary>
    string Name { get; }
    string Task { get; }
    string SrcLang { get; }
    string TgtLang { get; }
    int Count { get; }

    /// <summary>The model-ready example at <paramref name="index"/> (0 ≤ index &lt; Count).</summary>
    Example Get(int index);

    /// <summary>
    /// The example at <paramref name="index"/> when drawn in pass <paramref name="epoch"/> over the set. Sets whose
    /// examples are randomised per draw (DAE noise) use the epoch so each pass sees new noise yet a restored sampler
    /// reproduces it; others ignore it.
    /// </summary>
    Example Get(int index, long epoch) => Get(index);

    /// <summary>Source length of example <paramref name="index"/> (tag and EOS included), without building it.</summary>
    int SourceLength(int index);

    /// <summary>Target length of example <paramref name="index"/> (EOS included), without building it.</summary>
    int TargetLength(int index);
}
