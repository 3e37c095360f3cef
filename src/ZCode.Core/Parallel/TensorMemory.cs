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

    public static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.ComplexFloat64 => 16,
        _ => throw new ArgumentException($"unsupported dtype {dtype}"),
    };

    public static long Bytes(Tensor t) => t.numel() * ElementSize(t.dtype);

    /// <summary>Throws unless <paramref name="t"/> is contiguous and on a device of <paramref name="device"/>'s type.</summary>
    public static void Require(Tensor t, string op, string what, DeviceType device, string backend)
    {
        if (!t.is_contiguous())
            throw new ArgumentException($"{op}: {what} must be contiguous");
        if (t.device_type != device)
            throw new ArgumentException($"{op}: backend {backend} needs {device} tensors, {what} is on {t.device}");
    }
}
