using ZCode.Text;

namespace ZCode.Data;

/// <summary>The lines of one text file, tokenized (no tags, no EOS). Shared by every corpus that uses the file.</summary>
public sealed class TokenizedFile
{
    private TokenizedFile(string path, int[][] lines)
    {
        Path = path;
        Lines = lines;
    }

    /// <summary>Full path.</summary>
    public string Path { get; }

    /// <summary>Token ids of each line, in file order.</summary>
    public IReadOnlyList<int[]> Lines { get; }

    /// <summary>Reads (strict UTF-8) and tokenizes every line of <paramref name="path"/>.</summary>
    public static TokenizedFile Read(string path, SpmTokenizer tokenizer)
    {
        var lines = new List<int[]>();
        foreach (var line in Utf8LineReader.ReadLines(path))
            lines.Add(tokenizer.Encode(line));
        return new TokenizedFile(path, lines.ToArray());
    }
}

/// <summary>
/// An in-memory parallel corpus: line i of the source file translates line i of the target file. Pairs where
/// either side is empty (no tokens) or too long are skipped and counted. "Too long": a side with more than
/// max_len - 2 tokens, leaving room for the language tag (or BOS) and EOS whichever side becomes the source,
/// so the same corpus serves both directions.
/// </summary>
public sealed class ParallelCorpus
{
    private readonly int[][] _src;
    private readonly int[][] _tgt;

    private ParallelCorpus(string srcPath, string tgtPath, string srcLang, string tgtLang, int[][] src, int[][] tgt,
        long lines, long skippedEmpty, long skippedTooLong)
    {
        SrcPath = srcPath;
        TgtPath = tgtPath;
        SrcLang = srcLang;
        TgtLang = tgtLang;
        _src = src;
        _tgt = tgt;
        LinesRead = lines;
        SkippedEmpty = skippedEmpty;
        SkippedTooLong = skippedTooLong;
    }

    public string SrcPath { get; }
    public string TgtPath { get; }
    /// <summary>Canonical language codes.</summary>
    public string SrcLang { get; }
    public string TgtLang { get; }
    /// <summary>Kept pairs.</summary>
    public int Count => _src.Length;
    /// <summary>Lines in each file.</summary>
    public long LinesRead { get; }
    /// <summary>Pairs skipped because one side has no tokens (empty or whitespace-only line).</summary>
    public long SkippedEmpty { get; }
    /// <summary>Pairs skipped because one side has more than max_len - 2 tokens.</summary>
    public long SkippedTooLong { get; }

    /// <summary>Source tokens of kept pair <paramref name="index"/> (no tag, no EOS).</summary>
    public int[] Source(int index) => _src[index];

    /// <summary>Target tokens of kept pair <paramref name="index"/> (no EOS).</summary>
    public int[] Target(int index) => _tgt[index];

    /// <summary>
    /// Reads, tokenizes and filters a file pair. Relative paths resolve against <paramref name="baseDir"/>.
    /// Missing files, invalid UTF-8 (file:line:column) and differing line counts are <see cref="UserInputException"/>s.
    /// </summary>
    public static ParallelCorpus Load(string srcPath, string tgtPath, string srcLang, string tgtLang,
        SpmTokenizer tokenizer, int maxLen, string baseDir)
        => Load(srcPath, tgtPath, srcLang, tgtLang, tokenizer, maxLen, baseDir, cache: null);

    internal static ParallelCorpus Load(string srcPath, string tgtPath, string srcLang, string tgtLang,
        SpmTokenizer tokenizer, int maxLen, string baseDir, Dictionary<string, TokenizedFile>? cache)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (maxLen < 3) throw new ArgumentOutOfRangeException(nameof(maxLen), maxLen, "max_len must be at least 3");
        var src = ReadCached(ResolvePath(srcPath, baseDir), tokenizer, cache);
        var tgt = ReadCached(ResolvePath(tgtPath, baseDir), tokenizer, cache);
        if (src.Lines.Count != tgt.Lines.Count)
            throw new UserInputException(
                $"{src.Path}, {tgt.Path}: parallel files must have the same number of lines, but {src.Path} has " +
                $"{src.Lines.Count} and {tgt.Path} has {tgt.Lines.Count}");

        var maxTokens = maxLen - 2;
        var keptSrc = new List<int[]>(src.Lines.Count);
        var keptTgt = new List<int[]>(src.Lines.Count);
        long empty = 0, tooLong = 0;
        for (var i = 0; i < src.Lines.Count; i++)
        {
            var s = src.Lines[i];
            var t = tgt.Lines[i];
            if (s.Length == 0 || t.Length == 0) { empty++; continue; }
            if (s.Length > maxTokens || t.Length > maxTokens) { tooLong++; continue; }
            keptSrc.Add(s);
            keptTgt.Add(t);
        }
        return new ParallelCorpus(src.Path, tgt.Path, Languages.Resolve(srcLang), Languages.Resolve(tgtLang),
            keptSrc.ToArray(), keptTgt.ToArray(), src.Lines.Count, empty, tooLong);
    }

    /// <summary>Full path of <paramref name="path"/>, relative ones taken from <paramref name="baseDir"/>.</summary>
    public static string ResolvePath(string path, string baseDir)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new UserInputException("empty corpus path");
        return Path.GetFullPath(path, Path.GetFullPath(baseDir));
    }

    private static TokenizedFile ReadCached(string fullPath, SpmTokenizer tokenizer, Dictionary<string, TokenizedFile>? cache)
    {
        if (cache is null) return TokenizedFile.Read(fullPath, tokenizer);
        if (!cache.TryGetValue(fullPath, out var file))
            cache[fullPath] = file = TokenizedFile.Read(fullPath, tokenizer);
        return file;
    }
}
