using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Runtime;

/// <summary>
/// Whether a device computes bf16 fast, which is what <c>train.dtype: auto</c> asks: an x86 CPU with AVX512-BF16 or AMX
/// (bf16 dot products in hardware; without them LibTorch emulates bf16 matmuls and they are slower than fp32), or a
/// CUDA GPU of compute capability 8.0 or newer (Ampere: bf16 tensor cores). Anything else, or a device it cannot tell
/// about, gets fp32.
/// </summary>
public static class Bf16Support
{
    /// <summary>Whether <paramref name="device"/> has fast bf16, with the reason in words for the run's log.</summary>
    public static (bool Fast, string Why) Of(Device device) => device.type switch
    {
        DeviceType.CPU => Cpu(),
        DeviceType.CUDA => Cuda(Math.Max(0, device.index)),
        _ => (false, $"{device.type}: not known to compute bf16 fast"),
    };

    private static (bool, string) Cpu()
    {
        if (!X86Base.IsSupported)
            return (false, "the CPU is not x86; bf16 speed unknown");
        // CPUID leaf 7: sub-leaf 1 EAX bit 5 is AVX512_BF16, sub-leaf 0 EDX bit 22 is AMX-BF16.
        bool avx512Bf16 = (X86Base.CpuId(7, 1).Eax & (1 << 5)) != 0;
        bool amxBf16 = (X86Base.CpuId(7, 0).Edx & (1 << 22)) != 0;
        return avx512Bf16 || amxBf16
            ? (true, $"the CPU has {(amxBf16 ? "AMX-BF16" : "AVX512-BF16")}")
            : (false, "the CPU has neither AVX512-BF16 nor AMX");
    }

    private static (bool, string) Cuda(int index)
    {
        if (ComputeCapabilityMajor(index) is not { } major)
            return (false, $"cuda:{index}: compute capability unknown (libcudart not found)");
        return major >= 8 ? (true, $"cuda:{index} is compute capability {major}.x") : (false, $"cuda:{index} is compute capability {major}.x, below 8.0");
    }

    private delegate int DeviceGetAttribute(out int value, int attribute, int device);
    private const int ComputeCapabilityMajorAttribute = 75; // cudaDevAttrComputeCapabilityMajor

    /// <summary>The major compute capability from the CUDA runtime LibTorch loaded, or null.</summary>
    private static int? ComputeCapabilityMajor(int device)
    {
        foreach (var name in new[] { "libcudart.so.12", "libcudart.so.13", "libcudart.so", "cudart64_12.dll" })
        {
            if (!NativeLibrary.TryLoad(name, out var lib)) continue;
            if (!NativeLibrary.TryGetExport(lib, "cudaDeviceGetAttribute", out var fn)) continue;
            var get = Marshal.GetDelegateForFunctionPointer<DeviceGetAttribute>(fn);
            return get(out var major, ComputeCapabilityMajorAttribute, device) == 0 ? major : null;
        }
        return null;
    }
}
