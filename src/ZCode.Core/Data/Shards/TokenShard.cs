using System.IO.MemoryMappedFiles;

namespace ZCode.Data.Shards;

/// <summary>
/// Writes one token shard: <c>NAME.ids</c> holds every line's ids back to back (uint16 when the vocabulary fits,
/// else uint32, little-endian) and <c>NAME.idx</c> holds n+1 int64 offsets (in tokens) so line i is
/// ids[off[i]..off[i+1]]. Lines are appended in file order; empty lines are kept as empty ranges so line numbers
/// stay aligned with the text file (filtering happens in per-corpus keep lists).
/// </summary>
public sealed class TokenShardWriter : IDisposable
{
    private readonly BufferedStream _ids;
    private readonly BufferedStream _idx;
    private readonly int _width;
    private readonly byte[] _scratch = new byte[8];
    private long _offset;
    private byte[] _line = new byte[1024];

    public TokenShardWriter(string basePath, int idWidth)
    {
        if (idWidth is not (2 or 4)) throw new ArgumentOutOfRangeException(nameof(idWidth), idWidth, "2 or 4 bytes");
        _width = idWidth;
        _ids = new BufferedStream(new FileStream(basePath + ".ids", FileMode.Create, FileAccess.Write), 1 << 20);
        _idx = new BufferedStream(new FileStream(basePath + ".idx", FileMode.Create, FileAccess.Write), 1 << 16);
        WriteOffset(0);
    }

    public long Lines { get; private set; }
    public long Tokens => _offset;

    public void Append(ReadOnlySpan<int> ids)
    {
        // One write per line (not per id): BufferedStream calls cost more than the copy.
        var bytes = ids.Length * _width;
        if (_line.Length < bytes) _line = new byte[Math.Max(bytes, _line.Length * 2)];
        if (_width == 2)
            for (var i = 0; i < ids.Length; i++)
            {
                _line[2 * i] = (byte)ids[i];
                _line[2 * i + 1] = (byte)(ids[i] >> 8);
            }
        else
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids).CopyTo(_line); // little-endian hosts only
        _ids.Write(_line, 0, bytes);
        _offset += ids.Length;
        Lines++;
        WriteOffset(_offset);
    }

    private void WriteOffset(long value)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(_scratch, value);
        _idx.Write(_scratch, 0, 8);
    }

    public void Dispose()
    {
        _ids.Dispose();
        _idx.Dispose();
    }
}

/// <summary>
/// A token shard opened read-only and memory-mapped (see <see cref="TokenShardWriter"/> for the layout): the OS pages
/// ids in on demand, so a corpus larger than memory costs only what is touched.
/// </summary>
public sealed unsafe class TokenShard : IDisposable
{
    private readonly MemoryMappedFile? _idsFile, _idxFile;
    private readonly MemoryMappedViewAccessor? _idsView, _idxView;
    private readonly byte* _ids;
    private readonly long* _idx;
    private readonly int _width;

    public TokenShard(string basePath, int idWidth)
    {
        if (idWidth is not (2 or 4)) throw new ArgumentOutOfRangeException(nameof(idWidth), idWidth, "2 or 4 bytes");
        _width = idWidth;
        BasePath = basePath;
        var idxLength = new FileInfo(basePath + ".idx").Length;
        if (idxLength < 8 || idxLength % 8 != 0)
            throw new InvalidDataException(ShardVerifier.Damaged(basePath + ".idx", $"not a shard index ({idxLength} bytes)"));
        Lines = idxLength / 8 - 1;
        _idx = (long*)Map(basePath + ".idx", out _idxFile, out _idxView);
        var idsLength = new FileInfo(basePath + ".ids").Length;
        if (idsLength != _idx[Lines] * _width)
            throw new InvalidDataException(ShardVerifier.Damaged(basePath + ".ids", $"{idsLength} bytes, which does not match its index"));
        if (idsLength > 0) _ids = Map(basePath + ".ids", out _idsFile, out _idsView);
    }

    public string BasePath { get; }
    public long Lines { get; }

    /// <summary>Tokens of line <paramref name="line"/> (0-based).</summary>
    public int Length(long line) => (int)(_idx[line + 1] - _idx[line]);

    /// <summary>Copies the ids of line <paramref name="line"/> into <paramref name="dest"/> (at least <see cref="Length"/> long).</summary>
    public void CopyTo(long line, Span<int> dest)
    {
        if ((ulong)line >= (ulong)Lines) throw new ArgumentOutOfRangeException(nameof(line), line, $"0..{Lines - 1}");
        var start = _idx[line];
        var n = (int)(_idx[line + 1] - start);
        if (_width == 2)
        {
            var p = (ushort*)_ids + start;
            for (var i = 0; i < n; i++) dest[i] = p[i];
        }
        else new ReadOnlySpan<int>((int*)_ids + start, n).CopyTo(dest);
    }

    public int[] Get(long line)
    {
        var result = new int[Length(line)];
        CopyTo(line, result);
        return result;
    }

    private static byte* Map(string path, out MemoryMappedFile? file, out MemoryMappedViewAccessor? view)
    {
        file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        return p + view.PointerOffset;
    }

    public void Dispose()
    {
        if (_idsView is not null) { _idsView.SafeMemoryMappedViewHandle.ReleasePointer(); _idsView.Dispose(); }
        if (_idxView is not null) { _idxView.SafeMemoryMappedViewHandle.ReleasePointer(); _idxView.Dispose(); }
        _idsFile?.Dispose();
        _idxFile?.Dispose();
    }
}
