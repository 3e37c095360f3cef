using System.Text;

namespace ZCode.Data;

/// <summary>
/// Reads a text file line by line with strict UTF-8 decoding: invalid bytes are a <see cref="UserInputException"/>
/// naming the file, the 1-based line and column. Lines end at '\n'; a trailing '\r' is removed; a leading UTF-8 BOM
/// is skipped; a final line without '\n' counts, an empty remainder after the last '\n' does not (as File.ReadLines).
/// </summary>
public static class Utf8LineReader
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Lines of <paramref name="path"/>; missing files are a <see cref="UserInputException"/> naming the path.</summary>
    public static IEnumerable<string> ReadLines(string path)
    {
        if (!File.Exists(path))
            throw UserInputException.At(path, 0, 0, "file not found");
        return ReadLinesIterator(path, null);
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading; names ending in <c>.gz</c> are decompressed. Unreadable files are a
    /// <see cref="UserInputException"/> naming the path.
    /// </summary>
    public static Stream Open(string path)
    {
        if (!File.Exists(path)) throw UserInputException.At(path, 0, 0, "file not found");
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserInputException.At(path, 0, 0, $"cannot read: {e.Message}");
        }
    }

    /// <summary>
    /// Lines of <paramref name="raw"/> (the bytes of file <paramref name="path"/>, gzip-compressed when the name ends in
    /// <c>.gz</c>); errors name <paramref name="path"/>. The stream is disposed at the end.
    /// </summary>
    public static IEnumerable<string> ReadLines(Stream raw, string path) => ReadLinesIterator(path, raw);

    private static IEnumerable<string> ReadLinesIterator(string path, Stream? raw)
    {
        raw ??= Open(path);
        using var stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? new System.IO.Compression.GZipStream(raw, System.IO.Compression.CompressionMode.Decompress)
            : raw;
        var buffer = new byte[1 << 16];
        var line = new byte[256];
        var lineLength = 0;
        long lineNo = 0;
        var first = true;
        int read;
        while ((read = ReadChunk(stream, buffer, path)) > 0)
        {
            var start = 0;
            if (first)
            {
                first = false;
                if (read >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF) start = 3;
            }
            while (start < read)
            {
                var nl = Array.IndexOf(buffer, (byte)'\n', start, read - start);
                var end = nl < 0 ? read : nl;
                Append(ref line, ref lineLength, buffer.AsSpan(start, end - start));
                if (nl < 0) break;
                yield return Decode(path, ++lineNo, line, lineLength);
                lineLength = 0;
                start = nl + 1;
            }
        }
        if (lineLength > 0)
            yield return Decode(path, ++lineNo, line, lineLength);
    }

    private static int ReadChunk(Stream stream, byte[] buffer, string path)
    {
        try { return stream.Read(buffer, 0, buffer.Length); }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw UserInputException.At(path, 0, 0, $"cannot read: {e.Message}");
        }
    }

    private static void Append(ref byte[] line, ref int length, ReadOnlySpan<byte> bytes)
    {
        if (length + bytes.Length > line.Length)
            Array.Resize(ref line, Math.Max(line.Length * 2, length + bytes.Length));
        bytes.CopyTo(line.AsSpan(length));
        length += bytes.Length;
    }

    private static string Decode(string path, long lineNo, byte[] line, int length)
    {
        if (length > 0 && line[length - 1] == (byte)'\r') length--;
        try
        {
            return Strict.GetString(line, 0, length);
        }
        catch (DecoderFallbackException e)
        {
            var at = Math.Clamp(e.Index, 0, length);
            // Column in characters: decode the valid prefix leniently.
            var column = Encoding.UTF8.GetCharCount(line, 0, at) + 1;
            var bad = e.BytesUnknown is { Length: > 0 } b ? string.Join(' ', b.Select(x => $"0x{x:X2}")) : "?";
            throw UserInputException.At(path, lineNo, column,
                $"invalid UTF-8 (bytes {bad} at byte {at + 1} of the line); the file must be UTF-8 text");
        }
    }
}
