namespace ZCode.Data;

/// <summary>
/// Random access to the examples of one direction of one task (e.g. MT eng_Latn→deu_Latn): in memory
/// (<see cref="MtDirection"/>, for evaluation and tools that read text) or over binarized memory-mapped shards
/// (<see cref="ShardMtSet"/>, <see cref="DaeSet"/>, for training). The samplers and batchers only see this interface.
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
    private readonly PartOffsets _offsets = new();
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
    public int Count => _offsets.Count;

    /// <summary>The corpora of this direction and whether each is used reversed.</summary>
    public IReadOnlyList<(ParallelCorpus Corpus, bool Reversed)> Parts => _parts;

    /// <summary>Adds a corpus; <paramref name="reversed"/> uses its target side as the source.</summary>
    public void Add(ParallelCorpus corpus, bool reversed)
    {
        var (s, t) = reversed ? (corpus.TgtLang, corpus.SrcLang) : (corpus.SrcLang, corpus.TgtLang);
        if (s != SrcLang || t != TgtLang)
            throw new ArgumentException($"corpus {s}-{t} does not belong to direction {SrcLang}-{TgtLang}");
        _parts.Add((corpus, reversed));
        _offsets.Add(corpus.Count);
    }

    public Example Get(int index)
    {
        var (src, tgt) = Sides(index);
        var (source, target) = MtExample.Allocate(src.Length, tgt.Length, _tagId, _eosId);
        src.CopyTo(source, 1);
        tgt.CopyTo(target, 0);
        return new Example(source, target, SrcLang, TgtLang, Task);
    }

    public int SourceLength(int index) => Sides(index).Src.Length + 2;

    public int TargetLength(int index) => Sides(index).Tgt.Length + 1;

    private (int[] Src, int[] Tgt) Sides(int index)
    {
        var (part, i) = _offsets.Locate(index);
        var (corpus, reversed) = _parts[part];
        return reversed ? (corpus.Target(i), corpus.Source(i)) : (corpus.Source(i), corpus.Target(i));
    }
}

/// <summary>The MT example layout shared by every MT set: source = <c>&lt;2tgt&gt;</c> + tokens + EOS, target = tokens +
/// EOS.</summary>
internal static class MtExample
{
    /// <summary>Source and target arrays with the tag and EOS in place; the caller fills <c>source[1..^1]</c> with the
    /// <paramref name="srcTokens"/> source tokens and <c>target[..^1]</c> with the <paramref name="tgtTokens"/> target
    /// tokens.</summary>
    public static (int[] Source, int[] Target) Allocate(int srcTokens, int tgtTokens, int targetTagId, int eosId)
    {
        var source = new int[srcTokens + 2];
        source[0] = targetTagId;
        source[^1] = eosId;
        var target = new int[tgtTokens + 1];
        target[^1] = eosId;
        return (source, target);
    }
}
