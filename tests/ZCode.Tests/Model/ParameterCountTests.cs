using ZCode.Config;
using ZCode.Model;

namespace ZCode.Tests.Model;

/// <summary>The planner's arithmetic equals the parameters of a model actually built, and m3-10b is ~10.2B.</summary>
public class ParameterCountTests
{
    [TestCase(1, "sinusoidal", 2)]
    [TestCase(2, "learned", 1)]
    [TestCase(1, "sinusoidal", 3)]
    public void CountsMatchABuiltModel(int topK, string positions, int everyN)
    {
        var cfg = new ModelConfig
        {
            VocabSize = 101, DModel = 24, FfnDim = 40, Heads = 4, EncoderLayers = 3, DecoderLayers = 4,
            Positions = positions, MaxPositions = 50,
            Moe = new MoeConfig { Experts = 5, EveryNLayers = everyN, TopK = topK },
        };
        using var model = new Seq2SeqTransformer(cfg);
        long total = model.parameters().Sum(p => p.numel());
        long expert = model.MoeLayers.Sum(m => m.named_parameters()
            .Where(p => !p.name.StartsWith("router", StringComparison.Ordinal)).Sum(p => p.parameter.numel()));

        var c = ParameterCount.Of(cfg);
        Assert.Multiple(() =>
        {
            Assert.That(c.Total, Is.EqualTo(total));
            Assert.That(c.Expert, Is.EqualTo(expert));
            Assert.That(c.NonExpert, Is.EqualTo(total - expert));
            Assert.That(c.Base, Is.EqualTo(total - expert + c.PerExpert * model.MoeLayers.Count));
            Assert.That(c.PerExpert * cfg.Moe.Experts * model.MoeLayers.Count, Is.EqualTo(expert));
            Assert.That(c.ActivePerToken, Is.EqualTo(c.NonExpert + topK * c.PerExpert * model.MoeLayers.Count));
        });
    }

    [Test]
    public void PaperTenBillionModelHasAboutTenPointTwoBillionParameters()
    {
        // The paper's shape: 24/12 layers, d 1024, FFN 4096, MoE every other layer, 64 experts, top-1.
        var cfg = new ModelConfig
        {
            VocabSize = 128_000, DModel = 1024, FfnDim = 4096, Heads = 16, EncoderLayers = 24, DecoderLayers = 12,
            Moe = new MoeConfig { Experts = 64, EveryNLayers = 2, TopK = 1 },
        };
        var c = ParameterCount.Of(cfg);
        Assert.That(c.EncoderMoeLayers + c.DecoderMoeLayers, Is.EqualTo(18));
        Assert.That(c.Total / 1e9, Is.EqualTo(10.2).Within(0.15));
        // "Base" as DeepSpeed-MoE counts it: the dense model (one FFN per MoE layer), the paper's 0.7B.
        Assert.That(c.Base / 1e9, Is.EqualTo(0.7).Within(0.1));
        Assert.That(c.Total - c.NonExpert, Is.EqualTo(18L * 64 * c.PerExpert));
    }
}
