using ZCode.Data.Shards;

namespace ZCode.Data;

/// <summary>Kept line numbers of one corpus (the <c>.keep</c> file written by <c>zcode data prepare</c>).</summary>
internal static class KeepList
{
    public static int[] Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length % 4 != 0)
            throw new UserInputException($"{path}: corrupt keep list ({bytes.Length} bytes); rerun 'zcode data prepare'");
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(bytes).ToArray();
    }
}

/// <summary>
/// MT in one direction over memory-mapped shards: parts are (source shard, target shard, kept lines), concatenated.
/// Source = <c>&lt;2tgt&gt;</c> + tokens + EOS, target = tokens + EOS.
/// </summary>
public sealed class ShardMtSet : IExampleSet
{
    private readonly List<(TokenShard Src, TokenShard Tgt, int[] Keep)> _parts = new();
    private readonly List<int> _offsets = new() { 0 };
    private readonly int _tagId, _eosId;

    public ShardMtSet(string srcLang, string tgtLang, int targetTagId, int eosId)
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

    public void Add(TokenShard src, TokenShard tgt, int[] keep)
    {
        if (keep.Length == 0) return;
        _parts.Add((src, tgt, keep));
        _offsets.Add(checked(_offsets[^1] + keep.Length));
    }

    public Example Get(int index)
    {
        var (src, tgt, line) = Locate(index);
        var source = new int[src.Length(line) + 2];
        source[0] = _tagId;
        src.CopyTo(line, source.AsSpan(1));
        source[^1] = _eosId;
        var target = new int[tgt.Length(line) + 1];
        tgt.CopyTo(line, target);
        target[^1] = _eosId;
        return new Example(source, target, SrcLang, TgtLang, Task);
    }

    public int SourceLength(int index)
    {
        var (src, _, line) = Locate(index);
        return src.Length(line) + 2;
    }

    public int TargetLength(int index)
    {
        var (_, tgt, line) = Locate(index);
        return tgt.Length(line) + 1;
    }

    private (TokenShard Src, TokenShard Tgt, long Line) Locate(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"0..{Count - 1}");
        var part = _offsets.BinarySearch(index);
        part = part >= 0 ? part : ~part - 1;
        var (s, t, keep) = _parts[part];
        return (s, t, keep[index - _offsets[part]]);
    }
}

/// <summary>
/// Denoising auto-encoding in one language over monolingual shards. Source = <c>&lt;dae&gt;</c> <c>&lt;2xx&gt;</c> +
/// noised tokens + EOS (the task tag says "reconstruct", the language tag names the output language as in MT);
/// target = the original tokens + EOS. Noise is seeded by (seed, language, index, epoch): fixed for a given draw,
/// different in each pass.
/// </summary>
public sealed class DaeSet : IExampleSet
{
    private readonly List<(TokenShard Shard, int[] Keep)> _parts = new();
    private readonly List<int> _offsets = new() { 0 };
    private readonly int _daeId, _langTagId, _eosId;
    private readonly DaeNoise _noise;
    private readonly long _seed;

    public DaeSet(string lang, int daeId, int langTagId, int eosId, DaeNoise noise, long seed)
    {
        SrcLang = TgtLang = lang;
        _daeId = daeId;
        _langTagId = langTagId;
        _eosId = eosId;
        _noise = noise;
        _seed = DeterministicRandom.DeriveSeed(seed, 0x646165 /* "dae" */, langTagId);
    }

    public string Name => $"{Task}:{SrcLang}";
    public string Task => Tasks.Dae;
    public string SrcLang { get; }
    public string TgtLang { get; }
    public int Count => _offsets[^1];

    public void Add(TokenShard shard, int[] keep)
    {
        if (keep.Length == 0) return;
        _parts.Add((shard, keep));
        _offsets.Add(checked(_offsets[^1] + keep.Length));
    }

    public Example Get(int index) => Get(index, 0);

    public Example Get(int index, long epoch)
    {
        var (shard, line) = Locate(index);
        var original = shard.Get(line);
        var noised = _noise.Apply(original, new DeterministicRandom(DeterministicRandom.DeriveSeed(_seed, index, epoch)));
        var source = new int[noised.Length + 3];
        source[0] = _daeId;
        source[1] = _langTagId;
        noised.CopyTo(source, 2);
        source[^1] = _eosId;
        var target = new int[original.Length + 1];
        original.CopyTo(target, 0);
        target[^1] = _eosId;
        return new Example(source, target, SrcLang, TgtLang, Task);
    }

    /// <summary>An upper bound (noise only shortens the text), which is what the token budget needs.</summary>
    public int SourceLength(int index)
    {
        var (shard, line) = Locate(index);
        return shard.Length(line) + 3;
    }

    public int TargetLength(int index)
    {
        var (shard, line) = Locate(index);
        return shard.Length(line) + 1;
    }

    private (TokenShard Shard, long Line) Locate(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"0..{Count - 1}");
        var part = _offsets.BinarySearch(index);
        part = part >= 0 ? part : ~part - 1;
        var (s, keep) = _parts[part];
        return (s, keep[index - _offsets[part]]);
    }
}
