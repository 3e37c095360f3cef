using ZCode.Data.Shards;

namespace ZCode.Data;

/// <summary>Kept line numbers of one corpus (the <c>.keep</c> file written by <c>zcode data prepare</c>).</summary>
internal static class KeepList
{
    /// <summary>The line numbers in <paramref name="bytes"/>, the content of <paramref name="path"/>.</summary>
    public static int[] Parse(string path, byte[] bytes)
    {
        if (bytes.Length % 4 != 0)
            throw new InvalidDataException(ShardVerifier.Damaged(path, $"not a keep list ({bytes.Length} bytes)"));
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(bytes).ToArray();
    }
}

/// <summary>
/// MT in one direction over memory-mapped shards: parts are (source shard, target shard, kept lines), concatenated.
/// The example layout is <see cref="MtExample"/>'s.
/// </summary>
public sealed class ShardMtSet : IExampleSet
{
    private readonly List<(TokenShard Src, TokenShard Tgt, int[] Keep)> _parts = new();
    private readonly PartOffsets _offsets = new();
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
    public int Count => _offsets.Count;

    public void Add(TokenShard src, TokenShard tgt, int[] keep)
    {
        _parts.Add((src, tgt, keep));
        _offsets.Add(keep.Length);
    }

    public Example Get(int index)
    {
        var (src, tgt, line) = Locate(index);
        return new Example(MtExample.Source(src, line, _tagId, _eosId), MtExample.Target(tgt, line, _eosId), SrcLang,
            TgtLang, Task);
    }

    public int SourceLength(int index)
    {
        var (src, _, line) = Locate(index);
        return MtExample.SourceLength(src.Length(line));
    }

    public int TargetLength(int index)
    {
        var (_, tgt, line) = Locate(index);
        return MtExample.TargetLength(tgt.Length(line));
    }

    private (TokenShard Src, TokenShard Tgt, long Line) Locate(int index)
    {
        var (part, i) = _offsets.Locate(index);
        var (s, t, keep) = _parts[part];
        return (s, t, keep[i]);
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
    private readonly PartOffsets _offsets = new();
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
    public int Count => _offsets.Count;

    public void Add(TokenShard shard, int[] keep)
    {
        _parts.Add((shard, keep));
        _offsets.Add(keep.Length);
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
        var (part, i) = _offsets.Locate(index);
        var (s, keep) = _parts[part];
        return (s, keep[i]);
    }
}
