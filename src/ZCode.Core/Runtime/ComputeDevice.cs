using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Runtime;

/// <summary>
/// Turns <c>train.device</c> (auto | cpu | cuda | cuda:N) and <c>train.dtype</c> (fp32 | bf16, aliases float32 |
/// bfloat16) into a TorchSharp device and compute dtype; train, eval, translate and bench all resolve them here.
/// </summary>
public static class ComputeDevice
{
    /// <summary>The one-line error for a CUDA device on a build or machine without CUDA.</summary>
    public const string NoCudaMessage = "CUDA is not available in this build/machine; set train.device: cpu or auto";

    /// <summary>Whether <paramref name="setting"/> is a well-formed device name (not whether it exists here).</summary>
    public static bool IsValidSetting(string? setting) => setting is "auto" or "cpu" or "cuda"
        || (setting is not null && setting.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(setting.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out _));

    /// <summary>Resolves a device setting against what LibTorch reports; bad or unavailable devices are input errors.</summary>
    public static Device Resolve(string setting, string key = "train.device")
        => Resolve(setting, key, cuda.is_available, cuda.device_count);

    /// <summary>Resolution with the CUDA probe passed in (tests use a fake machine).</summary>
    internal static Device Resolve(string setting, string key, Func<bool> cudaAvailable, Func<int> deviceCount)
    {
        bool available = IsValidSetting(setting) && setting != "cpu" && cudaAvailable();
        if (Problem(setting, available, available && setting != "auto" ? deviceCount() : 0) is { } problem)
            throw new UserInputException($"{key}: {problem}");
        if (!available)
            return CPU;
        return new Device(DeviceType.CUDA, setting is "auto" or "cuda" ? 0 : Index(setting));
    }

    /// <summary>
    /// Why <paramref name="setting"/> cannot be used on a machine with <paramref name="deviceCount"/> CUDA devices (the
    /// text after "train.device: "), or null when it can. The config validator and <see cref="Resolve(string, string)"/>
    /// share it, so both say the same.
    /// </summary>
    public static string? Problem(string setting, bool cudaAvailable, int deviceCount)
    {
        if (!IsValidSetting(setting))
            return $"must be auto, cpu, cuda or cuda:N (N a device index); got '{setting}'";
        if (setting is "cpu" or "auto")
            return null;
        if (!cudaAvailable)
            return $"{setting}: {NoCudaMessage}";
        int index = setting == "cuda" ? 0 : Index(setting);
        return index < deviceCount ? null
            : $"{setting} does not exist: this machine has {deviceCount} CUDA device(s), cuda:0..cuda:{deviceCount - 1}";
    }

    private static int Index(string setting) => int.Parse(setting.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>The compute dtype of a <c>train.dtype</c> value on <paramref name="device"/>: auto is bf16 where the device
    /// computes it fast (<see cref="Bf16Support"/>), else fp32.</summary>
    public static ScalarType Dtype(string name, Device device) => name == "auto"
        ? Bf16Support.Of(device).Fast ? ScalarType.BFloat16 : ScalarType.Float32
        : Named(name);

    /// <summary>Whether a <c>train.dtype</c> value computes in bf16 on a device that computes bf16 fast (a GPU of a
    /// memory plan): auto or bf16.</summary>
    public static bool IsBf16WhereFast(string name) => name == "auto" || Named(name) == ScalarType.BFloat16;

    private static ScalarType Named(string name) => name switch
    {
        "fp32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        _ => throw new UserInputException($"train.dtype: must be auto, fp32 or bf16 (aliases float32, bfloat16); got '{name}'"),
    };

    /// <summary>The documented name (fp32 | bf16) of a compute dtype.</summary>
    public static string DtypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        _ => dtype.ToString(),
    };

    /// <summary>A short description for logs: "cuda:0 bf16".</summary>
    public static string Describe(Device device, ScalarType dtype)
        => $"{(device.type == DeviceType.CUDA ? $"cuda:{Math.Max(0, device.index)}" : "cpu")} {DtypeName(dtype)}";
}
