using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>Raw data pointers and sizes of tensors handed to native collectives (notes/torchsharp.md §2).</summary>
internal static class TensorMemory
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr tensor);

    /// <summary>Address of the first element (storage offset included; a device pointer for CUDA tensors).</summary>
    public static IntPtr Pointer(Tensor t)
    {
        var p = THSTensor_data(t.Handle);
        if (p == IntPtr.Zero && t.numel() > 0)
            throw new CommunicatorException($"THSTensor_data returned null for a {t.dtype} tensor of {t.numel()} elements");
        return p;
    }

    public static long Bytes(Tensor t) => t.numel() * t.dtype.ElementSize();

    /// <summary>Bytes of one row (everything after dim 0) of an all-to-all-v's tensors, which must share the row shape.</summary>
    public static long RowBytes(Tensor input, Tensor output, string op)
    {
        static long Row(Tensor t) => t.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        if (input.dim() == 0 || output.dim() == 0 || Row(input) != Row(output))
            throw new ArgumentException($"{op}: input and output need the same row shape after dim 0");
        return Row(input) * input.dtype.ElementSize();
    }

    /// <summary>Throws unless <paramref name="t"/> is contiguous and on a device of <paramref name="device"/>'s type.</summary>
    public static void Require(Tensor t, string op, string what, DeviceType device, string backend)
    {
        if (!t.is_contiguous())
            throw new ArgumentException($"{op}: {what} must be contiguous");
        if (t.device_type != device)
            throw new ArgumentException($"{op}: backend {backend} needs {device} tensors, {what} is on {t.device}");
    }
}
