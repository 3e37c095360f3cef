using TorchSharp;
using ZCode.Runtime;
using static TorchSharp.torch;

namespace ZCode.Tests.Runtime;

public class ComputeDeviceTests
{
    [TestCase("auto", true)]
    [TestCase("cpu", true)]
    [TestCase("cuda", true)]
    [TestCase("cuda:1", true)]
    [TestCase("cuda:", false)]
    [TestCase("cuda:-1", false)]
    [TestCase("gpu", false)]
    [TestCase("CUDA", false)]
    public void Settings(string setting, bool valid) => Assert.That(ComputeDevice.IsValidSetting(setting), Is.EqualTo(valid));

    [Test]
    public void Auto_PicksCudaOnlyWhenAvailable()
    {
        Assert.That(ComputeDevice.Resolve("auto", "train.device", () => false, () => 0).type, Is.EqualTo(DeviceType.CPU));
        var cuda = ComputeDevice.Resolve("auto", "train.device", () => true, () => 2);
        Assert.That((cuda.type, cuda.index), Is.EqualTo((DeviceType.CUDA, 0)));
        var second = ComputeDevice.Resolve("cuda:1", "train.device", () => true, () => 2);
        Assert.That((second.type, second.index), Is.EqualTo((DeviceType.CUDA, 1)));
    }

    [Test]
    public void Cuda_WithoutCuda_IsAOneLineInputError()
    {
        var e = Assert.Throws<UserInputException>(() => ComputeDevice.Resolve("cuda", "train.device", () => false, () => 0))!;
        Assert.That(e.Message, Is.EqualTo("train.device: cuda: CUDA is not available in this build/machine; set train.device: cpu or auto"));
        var missing = Assert.Throws<UserInputException>(() => ComputeDevice.Resolve("cuda:2", "train.device", () => true, () => 2))!;
        Assert.That(missing.Message, Does.Contain("cuda:0..cuda:1"));
        Assert.That(ComputeDevice.Problem("cuda:1", cudaAvailable: true, deviceCount: 2), Is.Null);
        Assert.That(ComputeDevice.Problem("cuda", cudaAvailable: false, deviceCount: 0), Is.EqualTo(e.Message["train.device: ".Length..]),
            "the validator and Resolve say the same");
    }

    [Test]
    public void ThisCpuBuild_ReportsNoCuda_AndAutoIsCpu()
    {
        Assert.That(ComputeDevice.Resolve("auto").type, Is.EqualTo(DeviceType.CPU));
        Assert.Throws<UserInputException>(() => ComputeDevice.Resolve("cuda"));
    }

    [TestCase("fp32", ScalarType.Float32)]
    [TestCase("float32", ScalarType.Float32)]
    [TestCase("bf16", ScalarType.BFloat16)]
    [TestCase("bfloat16", ScalarType.BFloat16)]
    public void DtypeNamesAndAliases(string name, ScalarType dtype)
    {
        Assert.That(ComputeDevice.Dtype(name, CPU), Is.EqualTo(dtype));
        Assert.That(ComputeDevice.DtypeName(dtype), Is.EqualTo(dtype == ScalarType.Float32 ? "fp32" : "bf16"));
    }

    [Test]
    public void AutoIsBf16ExactlyWhereTheCpuHasBf16Instructions()
    {
        var (fast, why) = Bf16Support.Of(CPU);
        Assert.That(ComputeDevice.Dtype("auto", CPU), Is.EqualTo(fast ? ScalarType.BFloat16 : ScalarType.Float32), why);
        if (!OperatingSystem.IsLinux() || !System.Runtime.Intrinsics.X86.X86Base.IsSupported) return;
        // The kernel's view of the same CPUID bits.
        var flags = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("flags", StringComparison.Ordinal)).Split(' ');
        Assert.That(fast, Is.EqualTo(flags.Contains("avx512_bf16") || flags.Contains("amx_bf16")), why);
    }

    [Test]
    public void TrainCudaOnThisMachine_ExitsWith2BeforeWritingAnything()
    {
        var output = Path.Combine(Path.GetTempPath(), "zcode-cuda-" + Guid.NewGuid().ToString("N"));
        var (code, _, err) = CliRunner.Run("train", "--set", "train.device=cuda", "--output", output);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim(), Is.EqualTo("--set train.device=cuda: train.device: cuda: CUDA is not available in this build/machine; set train.device: cpu or auto"));
        Assert.That(Directory.Exists(output), Is.False);
    }

    [Test]
    public void BadDeviceInConfig_NamesTheKey()
    {
        var (code, _, err) = CliRunner.Run("config", "validate", Path.Combine(CliRunner.RepoRoot, "configs", "m3-tiny.yaml"), "--set", "train.device=gpu");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("train.device: must be auto, cpu, cuda or cuda:N"));
    }
}
