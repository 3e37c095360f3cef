using TorchSharp;
using ZCode.Parallel;
using ZCode.Runtime;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>
/// Dropout on CPU with masks from <see cref="Philox"/>, keyed by one 63-bit draw of torch's global generator per
/// call. LibTorch's CPU bernoulli draws every element from one Mersenne Twister under a lock (about 8 ns per element
/// on one thread whatever the thread count): at the shapes of a d256 MoE model that was a third of a training step.
/// Philox fills the same mask in a fraction of a nanosecond per element. Masks still follow from train.seed alone
/// (the key comes from the reseeded global generator), so runs and resumes reproduce; the numbers differ from
/// LibTorch's bernoulli. Other devices (CUDA's dropout is Philox already) and dtypes use LibTorch's dropout.
/// </summary>
public static class CounterDropout
{
    private const long Chunk = 1 << 20;

    /// <summary>Whether masks for tensors of <paramref name="dtype"/> on <paramref name="device"/> come from here.</summary>
    public static bool Serves(Device device, ScalarType dtype) =>
        device.type == DeviceType.CPU && dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>Inverted dropout of <paramref name="x"/> with drop probability <paramref name="p"/> in training:
    /// x times the multipliers of <see cref="Multipliers"/>; x itself outside training or at p = 0.</summary>
    public static Tensor Apply(Tensor x, double p, bool training)
    {
        if (!training || p == 0) return x;
        if (p >= 1 || !Serves(x.device, x.dtype)) return nn.functional.dropout(x, p, training);
        return x * Multipliers(x.shape, p, x.dtype, x.device);
    }

    /// <summary>Dropout multipliers of a fresh stream (one draw of the global generator): 1 / (1 - p) with probability
    /// 1 - p, else 0, in <paramref name="dtype"/>, rounded from fp32 as LibTorch's dropout rounds its scale.</summary>
    public static unsafe Tensor Multipliers(long[] shape, double p, ScalarType dtype, Device device)
    {
        if (!Serves(device, dtype))
            return empty(shape, dtype, device).bernoulli_(1 - p).div_(1 - p);
        var key = DrawKey();
        var mask = empty(shape, dtype, device);
        long n = mask.numel();
        if (n == 0) return mask;
        var start = (byte*)TensorMemory.Pointer(mask);
        var keep = Keep.Of(p);
        int parts = OpenMpTeam.Parts(n, ElementsPerPart);
        OpenMpTeam.Run(parts, part =>
        {
            var (from, to) = OpenMpTeam.Share(n, part, parts);
            FillRange(start + from * dtype.ElementSize(), dtype, to - from, key, from, keep);
        });
        return mask;
    }

    /// <summary>Rows <paramref name="rows"/> (int64, indices over all but the last dimension) of the multipliers that
    /// <see cref="Multipliers"/> would give a tensor of <paramref name="shape"/>, with the same one draw of the global
    /// generator: [rows, shape[^1]]. Counter-based masks draw those rows only (a layer needs a few rows of every expert's
    /// capacity slots); elsewhere the whole mask is drawn and the rows selected.</summary>
    public static unsafe Tensor Rows(long[] shape, Tensor rows, double p, ScalarType dtype, Device device)
    {
        long rowLength = shape[^1];
        if (!Serves(device, dtype))
            return Multipliers(shape, p, dtype, device).view(-1, rowLength).index_select(0, rows);
        var key = DrawKey();
        var indices = rows.data<long>().ToArray();
        var mask = empty(new long[] { indices.Length, rowLength }, dtype, device);
        if (mask.numel() == 0) return mask;
        var start = (byte*)TensorMemory.Pointer(mask);
        long rowBytes = rowLength * dtype.ElementSize();
        var keep = Keep.Of(p);
        int parts = OpenMpTeam.Parts(mask.numel(), ElementsPerPart);
        OpenMpTeam.Run(parts, part =>
        {
            var (from, to) = OpenMpTeam.Share(indices.Length, part, parts);
            for (long i = from; i < to; i++)
                FillRange(start + i * rowBytes, dtype, rowLength, key, indices[i] * rowLength, keep);
        });
        return mask;
    }

    // Masks are filled on LibTorch's OpenMP threads, one part per thread, from this many elements per part: every
    // element depends only on its index, so the split never changes a mask.
    private const long ElementsPerPart = 1 << 16;

    /// <summary>The key of a mask: one draw of torch's global generator, which training reseeds every micro-batch.</summary>
    private static ulong DrawKey()
    {
        using var draw = randint(long.MaxValue, new long[] { 1 }, ScalarType.Int64);
        return (ulong)draw.item<long>();
    }

    /// <summary>Threshold of a kept element's word and the fp32 scale of the kept ones, for drop probability p.</summary>
    private readonly record struct Keep(uint Threshold, float Scale)
    {
        public static Keep Of(double p) =>
            new((uint)Math.Min(uint.MaxValue, Math.Round((1 - p) * 4294967296.0)), 1.0f / (float)(1 - p));
    }

    /// <summary>Fills <paramref name="n"/> elements of <paramref name="dtype"/> at <paramref name="start"/> with the stream's
    /// elements from <paramref name="first"/> on.</summary>
    private static unsafe void FillRange(byte* start, ScalarType dtype, long n, ulong key, long first, Keep keep)
    {
        for (long at = 0; at < n; at += Chunk)
        {
            int len = (int)Math.Min(Chunk, n - at);
            switch (dtype)
            {
                case ScalarType.Float32:
                    Philox.Fill(new Span<float>((float*)start + at, len), key, first + at, keep.Threshold, keep.Scale);
                    break;
                case ScalarType.BFloat16:
                    Philox.Fill(new Span<ushort>((ushort*)start + at, len), key, first + at, keep.Threshold, Bf16Bits(keep.Scale));
                    break;
                default:
                    Philox.Fill(new Span<ushort>((ushort*)start + at, len), key, first + at, keep.Threshold,
                        BitConverter.HalfToUInt16Bits((Half)keep.Scale));
                    break;
            }
        }
    }

    /// <summary>fp32 to bf16 bits, round to nearest even (as LibTorch casts; the scale is finite).</summary>
    private static ushort Bf16Bits(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}
