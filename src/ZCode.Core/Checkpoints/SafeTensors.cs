using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>One tensor's entry in a safetensors header: dtype name, shape and byte range within the data section.</summary>
public sealed record SafeTensorInfo(string Name, string Dtype, long[] Shape, long Begin, long End);

/// <summary>What <see cref="SafeTensors.Write"/> produced: byte size and SHA-256 (computed while writing, so the
/// file is never read back just to be hashed).</summary>
public sealed record WrittenFile(long Size, string Sha256);

/// <summary>
/// The safetensors format by hand (TorchSharp has none): 8-byte little-endian header length N, N bytes of JSON
/// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then raw little-endian
/// tensor bytes, offsets relative to the data section. The header is space-padded to 8 bytes so data is aligned.
/// Tensors are streamed straight from and into native memory (<c>Tensor.bytes</c>), so neither side holds a
/// second copy of a file.
/// </summary>
public static class SafeTensors
{
    private static readonly (ScalarType Type, string Name)[] Dtypes =
    [
        (ScalarType.Float32, "F32"), (ScalarType.Float64, "F64"), (ScalarType.Float16, "F16"), (ScalarType.BFloat16, "BF16"),
        (ScalarType.Int64, "I64"), (ScalarType.Int32, "I32"), (ScalarType.Int16, "I16"), (ScalarType.Int8, "I8"),
        (ScalarType.Byte, "U8"), (ScalarType.Bool, "BOOL"),
    ];

    public static string DtypeName(ScalarType t) => Dtypes.FirstOrDefault(d => d.Type == t).Name
                                                     ?? throw new NotSupportedException($"safetensors: dtype {t} not supported");

    public static ScalarType ScalarTypeOf(string name, string file) => Dtypes.FirstOrDefault(d => d.Name == name) is var d && d.Name is not null
        ? d.Type
        : throw new UserInputException($"{file}: unsupported safetensors dtype '{name}'");

    /// <summary>Test hook: called with the file path after the header and before the data (fault injection).</summary>
    internal static Action<string>? AfterHeaderHook;

    /// <summary>Writes tensors (any device, any layout; copied to contiguous CPU only when needed) in the given order.</summary>
    public static WrittenFile Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata)
                meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            long bytes = t.numel() * t.ElementSize;
            header[name] = new JsonObject
            {
                ["dtype"] = DtypeName(t.dtype),
                ["shape"] = new JsonArray(t.shape.Select(s => (JsonNode)s).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        var headerBytes = new byte[8 + padded];
        BinaryPrimitives.WriteInt64LittleEndian(headerBytes, padded);
        json.CopyTo(headerBytes, 8);
        headerBytes.AsSpan(8 + json.Length).Fill((byte)' ');

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        fs.Write(headerBytes);
        hash.AppendData(headerBytes);
        AfterHeaderHook?.Invoke(path);
        foreach (var (_, t) in tensors)
        {
            // A contiguous CPU tensor (an expert's slice of a stacked [E, ...] weight is one) is written in place.
            var src = t.device_type == TorchSharp.DeviceType.CPU && t.is_contiguous() ? t : t.cpu().contiguous();
            try
            {
                WriteChunked(fs, hash, src.bytes);
            }
            finally
            {
                if (!ReferenceEquals(src, t)) src.Dispose();
            }
        }
        fs.Flush(flushToDisk: true);
        return new WrittenFile(fs.Length, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    private static void WriteChunked(Stream s, IncrementalHash hash, ReadOnlySpan<byte> data)
    {
        const int chunk = 1 << 24;
        for (int i = 0; i < data.Length; i += chunk)
        {
            var part = data.Slice(i, Math.Min(chunk, data.Length - i));
            hash.AppendData(part);
            s.Write(part);
        }
    }

    /// <summary>Parses the header; throws <see cref="UserInputException"/> naming the file when it is malformed.</summary>
    private static (IReadOnlyDictionary<string, SafeTensorInfo>, long) ReadHeader(FileStream fs, string path)
    {
        Span<byte> len = stackalloc byte[8];
        if (fs.Length < 8 || fs.Read(len) != 8)
            throw new UserInputException($"{path}: truncated safetensors file");
        long n = BinaryPrimitives.ReadInt64LittleEndian(len);
        if (n <= 0 || n > 100_000_000 || 8 + n > fs.Length)
            throw new UserInputException($"{path}: bad safetensors header length {n}");
        var json = new byte[n];
        fs.ReadExactly(json);
        JsonObject header;
        try
        {
            header = JsonNode.Parse(json)?.AsObject() ?? throw new JsonException("empty");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new UserInputException($"{path}: corrupt safetensors header ({e.Message})");
        }
        var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        long dataLength = fs.Length - 8 - n;
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
                continue;
            var o = node!.AsObject();
            var shape = o["shape"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray();
            var offs = o["data_offsets"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray();
            var info = new SafeTensorInfo(name, o["dtype"]!.GetValue<string>(), shape, offs[0], offs[1]);
            long expect = shape.Aggregate(1L, (a, b) => a * b) * ScalarTypeOf(info.Dtype, path).ElementSize();
            if (info.End - info.Begin != expect || info.Begin < 0 || info.End > dataLength)
                throw new UserInputException($"{path}: tensor '{name}' has data_offsets [{info.Begin}, {info.End}] that do not match its shape or the file size");
            tensors[name] = info;
        }
        return (tensors, 8 + n);
    }

    /// <summary>An open safetensors file: read whole tensors, or read straight into an existing tensor.</summary>
    public sealed class Reader : IDisposable
    {
        private readonly FileStream fs;
        private readonly long dataStart;

        public Reader(string path)
        {
            Path = path;
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            (Tensors, dataStart) = ReadHeader(fs, path);
        }

        public string Path { get; }
        public IReadOnlyDictionary<string, SafeTensorInfo> Tensors { get; }

        public bool Contains(string name) => Tensors.ContainsKey(name);

        private SafeTensorInfo Info(string name) => Tensors.TryGetValue(name, out var i)
            ? i
            : throw new UserInputException($"{Path}: tensor '{name}' missing");

        /// <summary>Reads a tensor into new CPU memory.</summary>
        public Tensor Read(string name)
        {
            var info = Info(name);
            var t = empty(info.Shape, ScalarTypeOf(info.Dtype, Path));
            Fill(info, t);
            return t;
        }

        /// <summary>Reads a tensor into <paramref name="target"/> (same shape and dtype; contiguous CPU memory is
        /// filled directly, anything else goes through a temporary).</summary>
        public void ReadInto(string name, Tensor target)
        {
            var info = Info(name);
            if (!info.Shape.SequenceEqual(target.shape) || ScalarTypeOf(info.Dtype, Path) != target.dtype)
                throw new UserInputException($"{Path}: tensor '{name}' is {info.Dtype}[{string.Join(",", info.Shape)}] but the model " +
                                             $"expects {DtypeName(target.dtype)}[{string.Join(",", target.shape)}]; the checkpoint does not match this model config");
            using var _ = no_grad();
            if (target.device_type == TorchSharp.DeviceType.CPU && target.is_contiguous())
            {
                Fill(info, target);
                return;
            }
            using var tmp = Read(name);
            target.copy_(tmp);
        }

        private void Fill(SafeTensorInfo info, Tensor t)
        {
            fs.Position = dataStart + info.Begin;
            var span = t.bytes;
            const int chunk = 1 << 24;
            for (int i = 0; i < span.Length; i += chunk)
                fs.ReadExactly(span.Slice(i, Math.Min(chunk, span.Length - i)));
        }

        public void Dispose() => fs.Dispose();
    }
}
