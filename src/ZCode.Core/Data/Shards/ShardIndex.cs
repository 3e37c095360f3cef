using System.Text.Json;
using System.Text.Json.Serialization;

namespace ZCode.Data.Shards;

/// <summary>
/// <c>index.json</c> of a shard directory, written last by <c>zcode data prepare</c> (its presence means the shards
/// are complete). <see cref="Fingerprint"/> hashes everything the shards depend on (input contents, SentencePiece
/// model, max_len, the corpus list), so an unchanged fingerprint means there is nothing to redo; <see cref="Checksums"/>
/// records the shard files as written, so a file changed since is caught (<see cref="ShardVerifier"/>).
/// </summary>
public sealed class ShardIndex
{
    // 2: Checksums added. An index without them cannot be verified, so it counts as stale and is prepared again.
    public const int CurrentVersion = 2;
    public const string FileName = "index.json";

    public int Version { get; set; } = CurrentVersion;
    public string Fingerprint { get; set; } = "";
    public string SpmModel { get; set; } = "";
    public string SpmSha256 { get; set; } = "";
    public int VocabSize { get; set; }
    public int MaxLen { get; set; }
    /// <summary>Bytes per id in the .ids files: 2 (uint16, vocabulary ≤ 65535) or 4 (uint32).</summary>
    public int IdWidth { get; set; }
    public List<ShardFileEntry> Files { get; set; } = new();
    public List<ShardCorpusEntry> Corpora { get; set; } = new();
    /// <summary>Size and SHA-256 of every shard file (<c>.ids</c>, <c>.idx</c>, <c>.keep</c>), by file name.</summary>
    public SortedDictionary<string, ShardFileDigest> Checksums { get; set; } = new(StringComparer.Ordinal);
    /// <summary>Kept training sentences and tokens per language (both sides of parallel corpora, monolingual text).</summary>
    public SortedDictionary<string, SentenceTokenCount> ByLanguage { get; set; } = new(StringComparer.Ordinal);
    /// <summary>Kept training pairs and tokens per parallel pair <c>src-tgt</c>.</summary>
    public SortedDictionary<string, SentenceTokenCount> ByPair { get; set; } = new(StringComparer.Ordinal);

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    public static ShardIndex? TryRead(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<ShardIndex>(File.ReadAllText(path), Json); }
        catch (JsonException) { return null; }
    }

    /// <summary>Writes to a temporary file and renames it, so a reader never sees half an index.</summary>
    public void Write(string path)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(this, Json));
        File.Move(tmp, path, overwrite: true);
    }
}

/// <summary>One input text file and its shard (<c>Shard.ids</c>/<c>Shard.idx</c>): every line, in file order.</summary>
public sealed class ShardFileEntry
{
    public string Path { get; set; } = "";
    public string Sha256 { get; set; } = "";
    public string Shard { get; set; } = "";
    public long Lines { get; set; }
    public long Tokens { get; set; }
    /// <summary>Lines with no tokens.</summary>
    public long EmptyLines { get; set; }
}

/// <summary>Size and SHA-256 (lowercase hex) of one shard file as <c>zcode data prepare</c> wrote it.</summary>
public sealed class ShardFileDigest
{
    public long Size { get; set; }
    public string Sha256 { get; set; } = "";
}

/// <summary>
/// One configured corpus: which file shards it reads and the kept line numbers (<c>Keep</c>, int32 little-endian),
/// with the counts of the skipped ones.
/// </summary>
public sealed class ShardCorpusEntry
{
    /// <summary>Config key, e.g. <c>data.parallel[0]</c>.</summary>
    public string Key { get; set; } = "";
    /// <summary>parallel | valid | test | monolingual.</summary>
    public string Section { get; set; } = "";
    public string Src { get; set; } = "";
    /// <summary>Target language (monolingual: the same as <see cref="Src"/>).</summary>
    public string Tgt { get; set; } = "";
    public int SrcFile { get; set; }
    /// <summary>Index in <see cref="ShardIndex.Files"/>; -1 for monolingual text.</summary>
    public int TgtFile { get; set; } = -1;
    public string Keep { get; set; } = "";
    public long Lines { get; set; }
    public long Kept { get; set; }
    public long SkippedEmpty { get; set; }
    public long SkippedTooLong { get; set; }
    public long SrcTokens { get; set; }
    public long TgtTokens { get; set; }

    /// <summary>The data error of a corpus that kept no line, naming its files and why their lines were skipped.</summary>
    public string NoUsableLines(ShardIndex index)
        => $"{Key}: no usable lines in {index.Files[SrcFile].Path}{(TgtFile >= 0 ? " / " + index.Files[TgtFile].Path : "")} " +
           $"({Lines} lines: {SkippedEmpty} empty, {SkippedTooLong} longer than data.max_len {index.MaxLen}); " +
           "fix the files or raise data.max_len";
}

public sealed class SentenceTokenCount
{
    public long Sentences { get; set; }
    public long Tokens { get; set; }
}
