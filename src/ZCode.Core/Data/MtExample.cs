using ZCode.Data.Shards;

namespace ZCode.Data;

/// <summary>
/// The MT example layout: source = <c>&lt;2tgt&gt;</c> + tokens + EOS, target = tokens + EOS. The training and
/// validation sets, <c>zcode eval</c> and <c>zcode translate</c> all build model inputs here, so a sentence read from
/// a shard and the same sentence typed as text reach the model as identical ids.
/// </summary>
internal static class MtExample
{
    /// <summary>Source length of a line of <paramref name="tokens"/> tokens (tag and EOS included).</summary>
    public static int SourceLength(int tokens) => tokens + 2;

    /// <summary>Target length of a line of <paramref name="tokens"/> tokens (EOS included).</summary>
    public static int TargetLength(int tokens) => tokens + 1;

    /// <summary>The source for <paramref name="tokens"/> (SentencePiece ids of one line, no tags).</summary>
    public static int[] Source(ReadOnlySpan<int> tokens, int targetTagId, int eosId)
    {
        var source = NewSource(tokens.Length, targetTagId, eosId);
        tokens.CopyTo(source.AsSpan(1));
        return source;
    }

    /// <summary>The source for line <paramref name="line"/> of <paramref name="shard"/>, copied straight from the map.</summary>
    public static int[] Source(TokenShard shard, long line, int targetTagId, int eosId)
    {
        var source = NewSource(shard.Length(line), targetTagId, eosId);
        shard.CopyTo(line, source.AsSpan(1));
        return source;
    }

    /// <summary>The target for line <paramref name="line"/> of <paramref name="shard"/>.</summary>
    public static int[] Target(TokenShard shard, long line, int eosId)
    {
        var target = new int[TargetLength(shard.Length(line))];
        shard.CopyTo(line, target);
        target[^1] = eosId;
        return target;
    }

    private static int[] NewSource(int tokens, int targetTagId, int eosId)
    {
        var source = new int[SourceLength(tokens)];
        source[0] = targetTagId;
        source[^1] = eosId;
        return source;
    }
}
