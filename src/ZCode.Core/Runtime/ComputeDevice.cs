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
        if (!IsValidSetting(setting))
            throw new UserInputException($"{key}: must be auto, cpu, cuda or cuda:N (N a device index); got '{setting}'");
        if (setting == "cpu")
            return CPU;
        bool available = cudaAvailable();
        if (setting == "auto")
            return available ? new Device(DeviceType.CUDA, 0) : CPU;
        if (!available)
            throw new UserInputException($"{key}: {setting}: {NoCudaMessage}");
        int index = setting == "cuda" ? 0 : int.Parse(setting.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture);
        int count = deviceCount();
        if (index >= count)
            throw new UserInputException($"{key}: {setting} does not exist: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}");
        return new Device(DeviceType.CUDA, index);
    }

    /// <summary>The compute dtype of a <c>train.dtype</c> value.</summary>
    public static ScalarType Dtype(string name) => name switch
    {
        "fp32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        _ => throw new UserInputException($"train.dtype: must be fp32 or bf16 (aliases float32, bfloat16); got '{name}'"),
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
