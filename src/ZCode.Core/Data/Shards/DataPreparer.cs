using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ZCode.Config;
using ZCode.Text;

namespace ZCode.Data.Shards;

/// <summary>Progress of <see cref="DataPreparer.Prepare"/>: the file being read and the totals so far.</summary>
public readonly record struct PrepareProgress(string File, int FileIndex, int FileCount, long Lines, long Bytes,
    long TotalBytes, double Seconds)
{
    public double LinesPerSecond => Lines / Math.Max(1e-9, Seconds);

    /// <summary>One progress line: file, lines, MiB read of the total, speed.</summary>
    public string Describe() => $"{Path.GetFileName(File)} ({FileIndex + 1}/{FileCount}): {Lines:N0} lines, " +
                                $"{Bytes / 1048576.0:F1}/{TotalBytes / 1048576.0:F1} MiB, {LinesPerSecond:N0} lines/s";
}

/// <summary>Outcome of <see cref="DataPreparer.Prepare"/>.</summary>
public sealed record PrepareResult(bool UpToDate, string IndexPath, ShardIndex Index, long Lines, long Bytes, double Seconds)
{
    /// <summary>The shard of input text file <paramref name="path"/> (full path, as the index lists it): every line of
    /// the file in order, whatever the corpus filters kept. Both of its files are checked against the index first.</summary>
    public TokenShard OpenShard(string path)
    {
        var file = Index.Files.FirstOrDefault(f => f.Path == path)
                   ?? throw new ArgumentException($"{path} is not an input of {IndexPath}", nameof(path));
        return Verifier.Open(file, checkTokens: true);
    }

    /// <summary>Checks these shards against the sizes and checksums of <see cref="Index"/>.</summary>
    public ShardVerifier Verifier => new(Index, Path.GetDirectoryName(IndexPath)!);
}

/// <summary>
/// <c>zcode data prepare</c>: tokenizes every text file the <c>data</c> section names (parallel, valid, test, monolingual;
/// plain or .gz) once, in parallel across cores, into memory-mappable shards under <c>data.shard_dir</c>, plus
/// per-corpus keep lists and <c>index.json</c>. Skips the work when the index's fingerprint (input contents, model,
/// max_len, corpus list) is unchanged.
/// </summary>
public static class DataPreparer
{
    private const int ChunkLines = 8192;

    /// <summary>Full path of the index for <paramref name="config"/>.</summary>
    public static string IndexPath(ZCodeConfig config) =>
        Path.Combine(config.ResolvePath(config.Data.ShardDir), ShardIndex.FileName);

    /// <summary>Prepares the shards (or finds them up to date). Bad input is a <see cref="UserInputException"/>.</summary>
    public static PrepareResult Prepare(ZCodeConfig config, IProgress<PrepareProgress>? progress = null,
        bool force = false, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        var clock = Stopwatch.StartNew();
        var plan = DataPlan.Build(config);
        var shardDir = config.ResolvePath(config.Data.ShardDir);
        var indexPath = Path.Combine(shardDir, ShardIndex.FileName);
        var spmSha = Sha256File(plan.SpmPath);

        // Hash the inputs up front only when an index exists to compare with; otherwise hash while reading.
        var old = force ? null : ShardIndex.TryRead(indexPath);
        if (old is not null && old.Version == ShardIndex.CurrentVersion)
        {
            var hashes = new string[plan.Files.Count];
            System.Threading.Tasks.Parallel.For(0, plan.Files.Count, i => hashes[i] = Sha256File(plan.Files[i]));
            if (old.Fingerprint == Fingerprint(plan, spmSha, config.Data.MaxLen, hashes) && ShardsExist(old, shardDir))
                return new PrepareResult(true, indexPath, old, 0, 0, clock.Elapsed.TotalSeconds);
        }

        Directory.CreateDirectory(shardDir);
        if (File.Exists(indexPath)) File.Delete(indexPath); // stale from here on, until the new one is written
        var tokenizer = SpmTokenizer.Load(plan.SpmPath);
        var width = tokenizer.VocabSize <= 65535 ? 2 : 4;
        var index = new ShardIndex
        {
            SpmModel = plan.SpmPath, SpmSha256 = spmSha, VocabSize = tokenizer.VocabSize, MaxLen = config.Data.MaxLen,
            IdWidth = width,
        };
        var totalBytes = plan.Files.Sum(f => new FileInfo(f).Length);
        long lines = 0, bytes = 0;
        var workers = threads > 0 ? threads : Environment.ProcessorCount;
        for (var i = 0; i < plan.Files.Count; i++)
        {
            var shard = $"f{i:D3}-{SafeName(plan.Files[i])}";
            var entry = TokenizeFile(plan.Files[i], Path.Combine(shardDir, shard), tokenizer, width, workers,
                (fileLines, fileBytes) => progress?.Report(new PrepareProgress(plan.Files[i], i, plan.Files.Count,
                    lines + fileLines, bytes + fileBytes, totalBytes, clock.Elapsed.TotalSeconds)));
            entry.Shard = shard;
            index.Files.Add(entry);
            lines += entry.Lines;
            bytes += new FileInfo(plan.Files[i]).Length;
        }
        BuildCorpora(plan, index, shardDir, config.Data.MaxLen);
        ShardVerifier.Record(index, shardDir);
        index.Fingerprint = Fingerprint(plan, spmSha, config.Data.MaxLen, index.Files.Select(f => f.Sha256).ToArray());
        index.Write(indexPath);
        return new PrepareResult(false, indexPath, index, lines, bytes, clock.Elapsed.TotalSeconds);
    }

    /// <summary>True when <c>index.json</c> exists and matches the current inputs (hashes every input file).</summary>
    public static bool IsUpToDate(ZCodeConfig config)
    {
        var plan = DataPlan.Build(config);
        var indexPath = IndexPath(config);
        var old = ShardIndex.TryRead(indexPath);
        if (old is null || old.Version != ShardIndex.CurrentVersion) return false;
        var hashes = plan.Files.Select(Sha256File).ToArray();
        return old.Fingerprint == Fingerprint(plan, Sha256File(plan.SpmPath), config.Data.MaxLen, hashes)
               && ShardsExist(old, Path.GetDirectoryName(indexPath)!);
    }

    private static bool ShardsExist(ShardIndex index, string dir) =>
        index.Files.All(f => File.Exists(Path.Combine(dir, f.Shard + ".ids")) && File.Exists(Path.Combine(dir, f.Shard + ".idx")))
        && index.Corpora.All(c => File.Exists(Path.Combine(dir, c.Keep)));

    private static string Fingerprint(DataPlan plan, string spmSha, int maxLen, IReadOnlyList<string> fileHashes)
    {
        var doc = new
        {
            version = ShardIndex.CurrentVersion, spm = spmSha, max_len = maxLen,
            files = plan.Files.Select((f, i) => new { path = f, sha256 = fileHashes[i] }),
            corpora = plan.Corpora.Select(c => new { c.Key, c.Section, c.Src, c.Tgt, c.SrcFile, c.TgtFile }),
        };
        return Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(doc)));
    }

    private static ShardFileEntry TokenizeFile(string path, string shardBase, SpmTokenizer tokenizer, int width,
        int workers, Action<long, long> report)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var raw = new HashingStream(Utf8LineReader.Open(path), hash);
        using var cancel = new CancellationTokenSource();
        // Reading and UTF-8 checking run on their own thread, one chunk ahead of the encoders (bounded: memory stays
        // a few chunks whatever the file size).
        using var chunks = new BlockingCollection<string[]>(boundedCapacity: 2);
        Exception? readError = null;
        var reader = Task.Run(() =>
        {
            try
            {
                var chunk = new List<string>(ChunkLines);
                foreach (var line in Utf8LineReader.ReadLines(raw, path))
                {
                    chunk.Add(line);
                    if (chunk.Count == ChunkLines)
                    {
                        chunks.Add(chunk.ToArray(), cancel.Token);
                        chunk.Clear();
                    }
                }
                if (chunk.Count > 0) chunks.Add(chunk.ToArray(), cancel.Token);
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { readError = e; }
            finally { chunks.CompleteAdding(); }
        });

        var entry = new ShardFileEntry { Path = path };
        var progressClock = Stopwatch.StartNew();
        try
        {
            using var writer = new TokenShardWriter(shardBase, width);
            var ids = new int[ChunkLines][];
            var options = new ParallelOptions { MaxDegreeOfParallelism = workers };
            foreach (var chunk in chunks.GetConsumingEnumerable())
            {
                var n = chunk.Length;
                // Contiguous ranges per worker: fewer hand-offs than one work item per line.
                System.Threading.Tasks.Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(0, n, Math.Max(64, n / (workers * 4))),
                    options, range =>
                    {
                        for (var i = range.Item1; i < range.Item2; i++) ids[i] = tokenizer.Encode(chunk[i]);
                    });
                for (var i = 0; i < n; i++)
                {
                    writer.Append(ids[i]);
                    if (ids[i].Length == 0) entry.EmptyLines++;
                }
                if (progressClock.ElapsedMilliseconds >= 500)
                {
                    report(writer.Lines, raw.Position);
                    progressClock.Restart();
                }
            }
            reader.Wait();
            if (readError is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(readError).Throw();
            entry.Lines = writer.Lines;
            entry.Tokens = writer.Tokens;
            report(writer.Lines, raw.Position);
        }
        finally
        {
            cancel.Cancel();
            try { reader.Wait(); } catch (AggregateException) { }
        }
        entry.Sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
        return entry;
    }

    private static void BuildCorpora(DataPlan plan, ShardIndex index, string shardDir, int maxLen)
    {
        var shards = index.Files.Select(f => new TokenShard(Path.Combine(shardDir, f.Shard), index.IdWidth)).ToArray();
        try
        {
            for (var c = 0; c < plan.Corpora.Count; c++)
            {
                var p = plan.Corpora[c];
                var src = shards[p.SrcFile];
                var tgt = p.TgtFile >= 0 ? shards[p.TgtFile] : null;
                if (tgt is not null && src.Lines != tgt.Lines)
                {
                    var (shortF, longF, n) = src.Lines < tgt.Lines
                        ? (plan.Files[p.SrcFile], plan.Files[p.TgtFile], src.Lines)
                        : (plan.Files[p.TgtFile], plan.Files[p.SrcFile], tgt.Lines);
                    throw UserInputException.At(longF, n + 1, 1,
                        $"{p.Key}: parallel files must have the same number of lines, but {plan.Files[p.SrcFile]} has " +
                        $"{src.Lines} and {plan.Files[p.TgtFile]} has {tgt.Lines} (this line has no counterpart in {shortF})");
                }
                // Room for the tags and EOS the task adds: MT <2tgt> + EOS on either side (both_directions may
                // reverse a pair); DAE <dae> <2xx> + EOS.
                var limit = tgt is null ? maxLen - 3 : maxLen - 2;
                var entry = new ShardCorpusEntry
                {
                    Key = p.Key, Section = p.Section, Src = p.Src, Tgt = p.Tgt, SrcFile = p.SrcFile, TgtFile = p.TgtFile,
                    Keep = $"c{c:D3}.keep", Lines = src.Lines,
                };
                using (var keep = new BufferedStream(File.Create(Path.Combine(shardDir, entry.Keep))))
                {
                    var buf = new byte[4]; // one per corpus: stackalloc here would sit inside the corpus loop
                    for (long i = 0; i < src.Lines; i++)
                    {
                        var ls = src.Length(i);
                        var lt = tgt?.Length(i) ?? ls;
                        if (ls == 0 || lt == 0) { entry.SkippedEmpty++; continue; }
                        if (ls > limit || lt > limit) { entry.SkippedTooLong++; continue; }
                        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(buf, checked((int)i));
                        keep.Write(buf);
                        entry.Kept++;
                        entry.SrcTokens += ls;
                        entry.TgtTokens += tgt is null ? 0 : lt;
                    }
                }
                index.Corpora.Add(entry);
                if (p.Section is "valid" or "test") continue;
                Count(index.ByLanguage, p.Src, entry.Kept, entry.SrcTokens);
                if (tgt is not null)
                {
                    Count(index.ByLanguage, p.Tgt, entry.Kept, entry.TgtTokens);
                    Count(index.ByPair, $"{p.Src}-{p.Tgt}", entry.Kept, entry.SrcTokens + entry.TgtTokens);
                }
            }
        }
        finally
        {
            foreach (var s in shards) s.Dispose();
        }
    }

    private static void Count(SortedDictionary<string, SentenceTokenCount> map, string key, long sentences, long tokens)
    {
        if (!map.TryGetValue(key, out var c)) map[key] = c = new SentenceTokenCount();
        c.Sentences += sentences;
        c.Tokens += tokens;
    }

    private static string SafeName(string path)
    {
        var name = Path.GetFileName(path);
        var sb = new StringBuilder();
        foreach (var ch in name) sb.Append(char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-' or '.' ? ch : '_');
        return sb.ToString();
    }

    internal static string Sha256File(string path)
    {
        using var stream = Utf8LineReader.Open(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Read-through stream that hashes the bytes it passes on.</summary>
    private sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
    {
        private long _position;
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = inner.Read(buffer, offset, count);
            hash.AppendData(buffer, offset, n);
            _position += n;
            return n;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
