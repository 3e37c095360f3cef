namespace ZCode.Data;

/// <summary>
/// Random access to the examples of one direction of one task (e.g. MT eng_Latn→deu_Latn). The in-memory
/// <see cref="MtDirection"/> implements it now; binarized memory-mapped shards will implement it later, and the
/// samplers and batchers only see this interface.
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

/// <summary>
/// Machine translation in one direction over one or more parallel corpora (concatenated in order). A corpus may
/// be used reversed (its target side as the source) for <c>both_directions</c>.
/// </summary>
public sealed class MtDirection : IExampleSet
{
    private readonly List<(ParallelCorpus Corpus, bool Reversed)> _parts = new();
    private readonly List<int> _offsets = new() { 0 };
    private readonly int _tagId;
    private readonly int _eosId;

    /// <param name="srcLang">Canonical source language.</param>
    /// <param name="tgtLang">Canonical target language.</param>
    /// <param name="targetTagId">Id of the <c>&lt;2tgt&gt;</c> tag put first on the source side.</param>
    /// <param name="eosId">End-of-sentence id appended to both sides.</param>
    public MtDirection(string srcLang, string tgtLang, int targetTagId, int eosId)
    {
        SrcLang = srcLang;
        TgtLang = tgtLang;
        _tagId = targetTagId;
        _eosId = eosId;
    }

    public string Name => $"{Task}:{SrcLang}-{TgtLang}";
    public string Task => Tasks.Mt;
    public string SrcLang { get; }
    public string TgtLang { get; }
    public int Count => _offsets[^1];

    /// <summary>The corpora of this direction and whether each is used reversed.</summary>
    public IReadOnlyList<(ParallelCorpus Corpus, bool Reversed)> Parts => _parts;

    /// <summary>Adds a corpus; <paramref name="reversed"/> uses its target side as the source.</summary>
    public void Add(ParallelCorpus corpus, bool reversed)
    {
        var (s, t) = reversed ? (corpus.TgtLang, corpus.SrcLang) : (corpus.SrcLang, corpus.TgtLang);
        if (s != SrcLang || t != TgtLang)
            throw new ArgumentException($"corpus {s}-{t} does not belong to direction {SrcLang}-{TgtLang}");
        _parts.Add((corpus, reversed));
        _offsets.Add(checked(_offsets[^1] + corpus.Count));
    }

    public Example Get(int index)
    {
        var (src, tgt) = Sides(index);
        var source = new int[src.Length + 2];
        source[0] = _tagId;
        src.CopyTo(source, 1);
        source[^1] = _eosId;
        var target = new int[tgt.Length + 1];
        tgt.CopyTo(target, 0);
        target[^1] = _eosId;
        return new Example(source, target, SrcLang, TgtLang, Task);
    }

    public int SourceLength(int index) => Sides(index).Src.Length + 2;

    public int TargetLength(int index) => Sides(index).Tgt.Length + 1;

    private (int[] Src, int[] Tgt) Sides(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"0..{Count - 1}");
        var part = _offsets.BinarySearch(index);
        part = part >= 0 ? part : ~part - 1;
        // Skip empty corpora that share the same offset.
        while (part + 1 < _offsets.Count - 1 && _offsets[part + 1] <= index) part++;
        var (corpus, reversed) = _parts[part];
        var i = index - _offsets[part];
        return reversed ? (corpus.Target(i), corpus.Source(i)) : (corpus.Source(i), corpus.Target(i));
    }
}
