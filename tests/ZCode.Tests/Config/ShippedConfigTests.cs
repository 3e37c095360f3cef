using ZCode.Config;

namespace ZCode.Tests.Config;

/// <summary>The configs in configs/ load and validate (m3-10b up to the data it leaves to you), and m3-10b matches the paper.</summary>
[TestFixture]
public class ShippedConfigTests
{
    [TestCase("m3-tiny.yaml")]
    [TestCase("m3-base.yaml")]
    public void ShippedConfig_Validates(string name)
    {
        var path = ConfigTestSupport.ShippedConfig(name);
        var (code, stdout, stderr) = ConfigTestSupport.Run("config", "validate", path);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout.TrimEnd(), Is.EqualTo($"{path}: ok"));
    }

    [Test]
    public void M3TenB_LoadsAndValidateNamesTheModelToProvide()
    {
        // A template for 64 GPUs: every value is in range, but its SentencePiece model and corpora are yours to make.
        var path = ConfigTestSupport.ShippedConfig("m3-10b.yaml");
        Assert.DoesNotThrow(() => ConfigLoader.LoadFile(path));
        var lines = File.ReadAllLines(path);
        var line = Array.FindIndex(lines, l => l.StartsWith("  spm_model: ", StringComparison.Ordinal));
        var (code, _, stderr) = ConfigTestSupport.Run("config", "validate", path, "--ranks", "64");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.TrimEnd(), Does.StartWith($"{path}:{line + 1}:{"  spm_model: ".Length + 1}: data.spm_model: ")
            .And.Contain("spm-128k.model: no such file"));
    }

    [TestCase("m3-tiny.yaml")]
    [TestCase("m3-base.yaml")]
    [TestCase("m3-10b.yaml")]
    public void ShippedConfig_WritesEveryKey_NoneLeftToDefaults(string name)
    {
        // Shipped configs document every value; a key missing from them would silently follow code defaults.
        var yaml = File.ReadAllText(ConfigTestSupport.ShippedConfig(name));
        foreach (var (section, keys) in new (string, IEnumerable<ConfigKey>)[]
                 {
                     ("model", ConfigKeys.For(typeof(ModelConfig))), ("moe", ConfigKeys.For(typeof(MoeConfig))),
                     ("tasks", ConfigKeys.For(typeof(TasksConfig))), ("train", ConfigKeys.For(typeof(TrainConfig))),
                     ("parallel", ConfigKeys.For(typeof(ParallelConfig))), ("eval", ConfigKeys.For(typeof(EvalConfig))),
                 })
            foreach (var key in keys)
                Assert.That(yaml, Does.Match($@"(?m)^\s+{key.Name}:"), $"{name}: {section}.{key.Name}");
    }

    [Test]
    public void M3Base_IsTheOneGpuModel()
    {
        var c = ConfigLoader.LoadFile(ConfigTestSupport.ShippedConfig("m3-base.yaml"));
        Assert.That((c.Model.EncoderLayers, c.Model.DecoderLayers, c.Model.DModel, c.Model.FfnDim, c.Model.Heads), Is.EqualTo((6, 6, 512, 2048, 8)));
        Assert.That((c.Model.Moe.Experts, c.Model.Moe.EveryNLayers, c.Model.Moe.TopK), Is.EqualTo((16, 2, 2)));
        Assert.That(c.Train.Dtype, Is.EqualTo("bf16"));
        Assert.That(c.Train.TokensPerBatch, Is.EqualTo(16384));
    }

    [Test]
    public void M3TenB_MatchesThePaper()
    {
        var c = ConfigLoader.LoadFile(ConfigTestSupport.ShippedConfig("m3-10b.yaml"));
        var m = c.Model;
        Assert.Multiple(() =>
        {
            Assert.That(m.EncoderLayers, Is.EqualTo(24));
            Assert.That(m.DecoderLayers, Is.EqualTo(12));
            Assert.That(m.DModel, Is.EqualTo(1024));
            Assert.That(m.FfnDim, Is.EqualTo(4096));
            Assert.That(m.Moe.EveryNLayers, Is.EqualTo(2));
            Assert.That(m.Moe.Experts, Is.EqualTo(64));
            Assert.That(m.Moe.TopK, Is.EqualTo(1));
            Assert.That(m.Moe.CapacityFactor, Is.EqualTo(1.0));
            Assert.That(m.Moe.EvalCapacityFactor, Is.EqualTo(2.0));
            Assert.That(m.Moe.MinCapacity, Is.EqualTo(4));
            Assert.That(m.Moe.TokenPriority, Is.EqualTo("random"));
            Assert.That(c.Parallel.ZeroStage, Is.EqualTo(2));
            // Our choices, documented as such in the file.
            Assert.That(m.Heads, Is.EqualTo(16));
            Assert.That(m.VocabSize, Is.EqualTo(128000));
            Assert.That(m.Moe.AuxLossWeight, Is.EqualTo(0.01));
            Assert.That(c.Parallel.Backend, Is.EqualTo("nccl"));
            Assert.That(c.Parallel.ExpertParallel, Is.EqualTo(64));
            Assert.That(c.Train.Dtype, Is.EqualTo("bf16"));
        });
    }

    [Test]
    public void M3TenB_HasAbout10BParameters()
    {
        // (paper) about 10.2B in total and a 0.7B dense base; exact arithmetic is tested in ParameterCountTests.
        var c = ZCode.Model.ParameterCount.Of(ConfigLoader.LoadFile(ConfigTestSupport.ShippedConfig("m3-10b.yaml")).Model);
        Assert.That(c.EncoderMoeLayers + c.DecoderMoeLayers, Is.EqualTo(18));
        Assert.That(c.Base / 1e9, Is.EqualTo(0.7).Within(0.1));
        Assert.That(c.Total / 1e9, Is.EqualTo(10.2).Within(0.15));
    }
}
