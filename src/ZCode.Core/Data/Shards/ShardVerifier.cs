using System.Diagnostics;
using System.Security.Cryptography;

namespace ZCode.Data.Shards;

/// <summary>Outcome of a content check of shard files: the first damaged one (-1: none), bytes hashed and seconds.</summary>
public sealed record ShardCheckResult(int Damaged, long Bytes, double Seconds);

/// <summary>
/// Checks shard files against the size and SHA-256 that <c>index.json</c> records for each, so that a shard changed
/// after <c>zcode data prepare</c> is never read as data: the sizes at every open (one stat per file), the small
/// <c>.idx</c> and <c>.keep</c> files before they are used (a damaged offset or line number would point outside the
/// memory-mapped ids), and the <c>.ids</c> files (the bulk) where the caller chooses: <c>zcode eval</c> before it reads
/// a shard, training on a background thread whose outcome the first step waits for. A damaged file is a runtime
/// failure (<see cref="InvalidDataException"/>) naming the file and the fix.
/// </summary>
public sealed class ShardVerifier(ShardIndex index, string directory)
{
    /// <summary>False when <c>ZCODE_VERIFY_SHARDS=0</c>: content is not hashed (sizes are still checked). It exists to
    /// measure what the checksums cost (bench/shard-verify.sh).</summary>
    public static bool ChecksContent => Environment.GetEnvironmentVariable("ZCODE_VERIFY_SHARDS") != "0";

    public string Directory { get; } = directory;

    /// <summary>The one-line error for a shard file that is not as <c>zcode data prepare</c> wrote it.</summary>
    public static string Damaged(string path, string what) =>
        $"{path}: {what}; the shard changed after 'zcode data prepare': rebuild the shards with 'zcode data prepare --force'";

    /// <summary>The error for a shard file whose content is not what <c>zcode data prepare</c> wrote.</summary>
    public static string ContentDamaged(string path) => Damaged(path, "its SHA-256 differs from index.json");

    /// <summary>Every shard file of <paramref name="index"/> (as named in <see cref="ShardIndex.Checksums"/>).</summary>
    public static IEnumerable<string> FileNames(ShardIndex index) =>
        index.Files.SelectMany(f => new[] { f.Shard + ".ids", f.Shard + ".idx" }).Concat(index.Corpora.Select(c => c.Keep));

    /// <summary>Records the size and SHA-256 of every shard file of <paramref name="index"/> (files hashed in parallel).</summary>
    public static void Record(ShardIndex index, string directory)
    {
        var names = FileNames(index).Distinct().ToArray();
        var digests = new ShardFileDigest[names.Length];
        System.Threading.Tasks.Parallel.For(0, names.Length, i =>
        {
            var path = Path.Combine(directory, names[i]);
            digests[i] = new ShardFileDigest { Size = new FileInfo(path).Length, Sha256 = Sha256(path) };
        });
        index.Checksums.Clear();
        for (var i = 0; i < names.Length; i++) index.Checksums[names[i]] = digests[i];
    }

    /// <summary>Throws when any shard file is missing or its size differs from the index's.</summary>
    public void CheckSizes()
    {
        foreach (var name in FileNames(index))
            CheckSize(name);
    }

    /// <summary>Opens the shard of <paramref name="file"/>: sizes of its files, content of its <c>.idx</c>, and with
    /// <paramref name="checkTokens"/> of its <c>.ids</c> too.</summary>
    public TokenShard Open(ShardFileEntry file, bool checkTokens = false)
    {
        CheckSize(file.Shard + ".ids");
        CheckContent(file.Shard + ".idx");
        if (checkTokens) CheckContent(file.Shard + ".ids");
        return new TokenShard(Path.Combine(Directory, file.Shard), index.IdWidth);
    }

    /// <summary>The kept line numbers of <paramref name="corpus"/>, checked against the index.</summary>
    public int[] ReadKeep(ShardCorpusEntry corpus)
    {
        var path = Path.Combine(Directory, corpus.Keep);
        var digest = Expected(corpus.Keep);
        var bytes = File.ReadAllBytes(path);
        if (bytes.LongLength != digest.Size)
            throw new InvalidDataException(Damaged(path, $"{bytes.LongLength} bytes, index.json says {digest.Size}"));
        if (ChecksContent && Convert.ToHexStringLower(SHA256.HashData(bytes)) != digest.Sha256)
            throw new InvalidDataException(ContentDamaged(path));
        return KeepList.Parse(path, bytes);
    }

    /// <summary>The <c>.ids</c> files of the corpora in <paramref name="sections"/> (every corpus when empty), in index
    /// order, each once.</summary>
    public IReadOnlyList<string> TokenFiles(params string[] sections) => index.Corpora
        .Where(c => sections.Length == 0 || sections.Contains(c.Section))
        .SelectMany(c => c.TgtFile >= 0 ? new[] { c.SrcFile, c.TgtFile } : [c.SrcFile])
        .Distinct().Order().Select(f => index.Files[f].Shard + ".ids").ToList();

    /// <summary>Throws for the first of <paramref name="names"/> whose content differs from the index.</summary>
    public void Verify(IReadOnlyList<string> names)
    {
        if (Check(names).Damaged is var bad and >= 0)
            throw new InvalidDataException(ContentDamaged(Path.Combine(Directory, names[bad])));
    }

    /// <summary>Hashes <paramref name="names"/> one after another (sizes were checked at open) and reports the first
    /// damaged one; nothing is hashed when <see cref="ChecksContent"/> is off.</summary>
    public ShardCheckResult Check(IReadOnlyList<string> names)
    {
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        for (var i = 0; i < names.Count && ChecksContent; i++)
        {
            var digest = Expected(names[i]);
            bytes += digest.Size;
            if (Sha256(Path.Combine(Directory, names[i])) != digest.Sha256)
                return new ShardCheckResult(i, bytes, clock.Elapsed.TotalSeconds);
        }
        return new ShardCheckResult(-1, bytes, clock.Elapsed.TotalSeconds);
    }

    private void CheckSize(string name)
    {
        var path = Path.Combine(Directory, name);
        var digest = Expected(name);
        var file = new FileInfo(path);
        if (!file.Exists)
            throw new InvalidDataException(Damaged(path, "missing"));
        if (file.Length != digest.Size)
            throw new InvalidDataException(Damaged(path, $"{file.Length} bytes, index.json says {digest.Size}"));
    }

    private void CheckContent(string name)
    {
        CheckSize(name);
        if (ChecksContent && Sha256(Path.Combine(Directory, name)) != Expected(name).Sha256)
            throw new InvalidDataException(ContentDamaged(Path.Combine(Directory, name)));
    }

    private ShardFileDigest Expected(string name) => index.Checksums.TryGetValue(name, out var d)
        ? d
        : throw new InvalidDataException(Damaged(Path.Combine(Directory, name), "not listed in index.json"));

    private static string Sha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
