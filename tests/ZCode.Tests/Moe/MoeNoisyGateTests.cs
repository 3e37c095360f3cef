using TorchSharp;
using ZCode.Config;
using ZCode.Model.Moe;
using static TorchSharp.torch;
using static ZCode.Tests.Moe.MoeTestUtil;

namespace ZCode.Tests.Moe;

/// <summary><c>model.moe.noisy_gate</c>: DeepSpeed's Jitter and RSample policies, training only.</summary>
[TestFixture]
public class MoeNoisyGateTests
{
    private static long[] FirstChoices(MoeLayer layer, Tensor x)
    {
        layer.forward(x, null);
        var r = layer.LastRouting!;
        return Longs(r.ExpertIndex.narrow(0, 0, x.shape[0]));
    }

    [Test]
    public void RSample_TopOne_NoisyChoice_CleanGate_OnlyInTraining()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var x = randn(256, 8);
        using var clean = new MoeLayer("moe", 8, 16, Cfg(4, 1, cf: 0.0));
        using var noisy = new MoeLayer("moe", 8, 16, Cfg(4, 1, cf: 0.0, noisyGate: "rsample")) { Seed = 3 };
        noisy.load_state_dict(clean.state_dict());
        Assert.That(noisy.NoisyGate, Is.EqualTo(NoisyGate.RSample));
        clean.train();
        noisy.train();

        var a = FirstChoices(clean, x);
        var b = FirstChoices(noisy, x);
        Assert.That(b.Zip(a).Count(p => p.First != p.Second), Is.GreaterThan(10), "Gumbel noise changes some choices");
        // The gate is the clean softmax probability of the (noisy) choice, as DeepSpeed's top1gating.
        var r = noisy.LastRouting!;
        var probs = nn.functional.softmax(nn.functional.linear(x, noisy.Router.weight!), 1);
        var expected = probs.gather(1, r.ExpertIndex.unsqueeze(1)).squeeze(1);
        Assert.That(MaxDiff(r.Gate, expected), Is.LessThan(1e-6));

        noisy.eval();
        clean.eval();
        Assert.That(FirstChoices(noisy, x), Is.EqualTo(FirstChoices(clean, x)), "no noise in evaluation");
    }

    [Test]
    public void RSample_TopTwo_SamplesOnlyTheSecondChoice()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        var x = randn(128, 8);
        using var clean = new MoeLayer("moe", 8, 16, Cfg(6, 2, cf: 0.0));
        using var noisy = new MoeLayer("moe", 8, 16, Cfg(6, 2, cf: 0.0, noisyGate: "rsample")) { Seed = 3 };
        noisy.load_state_dict(clean.state_dict());
        clean.train();
        noisy.train();
        clean.forward(x, null);
        var a = Longs(clean.LastRouting!.ExpertIndex);
        noisy.forward(x, null);
        var b = Longs(noisy.LastRouting!.ExpertIndex);
        Assert.That(b.Take(128), Is.EqualTo(a.Take(128)), "first choices are clean");
        Assert.That(b.Skip(128), Is.Not.EqualTo(a.Skip(128)), "second choices are sampled");
    }

    [Test]
    public void Jitter_OnlyWithNoisyGateJitter_AndOnlyInTraining()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var x = randn(64, 8);
        var cfgOff = Cfg(4, 1, cf: 0.0, jitter: 0.3, noisyGate: "none");   // epsilon set but policy off: no noise
        using var off = new MoeLayer("moe", 8, 16, cfgOff);
        using var on = new MoeLayer("moe", 8, 16, Cfg(4, 1, cf: 0.0, jitter: 0.3)) { Seed = 1 };
        on.load_state_dict(off.state_dict());
        off.train();
        on.train();
        off.forward(x, null);
        var clean = Floats(off.LastRouting!.Gate);
        on.forward(x, null);
        Assert.That(Floats(on.LastRouting!.Gate), Is.Not.EqualTo(clean), "jitter changes the router input");
        off.forward(x, null);
        Assert.That(Floats(off.LastRouting!.Gate), Is.EqualTo(clean));
        on.eval();
        off.eval();
        on.forward(x, null);
        var evalOn = Floats(on.LastRouting!.Gate);
        off.forward(x, null);
        Assert.That(evalOn, Is.EqualTo(Floats(off.LastRouting!.Gate)), "no jitter in evaluation");
    }

    [Test]
    public void UnknownNoisyGate_Throws()
    {
        Assert.Throws<ArgumentException>(() => NoisyGateNames.Parse("gumbel"));
        Assert.That(NoisyGateNames.Parse(" RSample "), Is.EqualTo(NoisyGate.RSample));
    }

    [TestCase("none", 0.0, true)]
    [TestCase("jitter", 0.01, true)]
    [TestCase("rsample", 0.0, true)]
    [TestCase("jitter", 0.0, false)]     // jitter noise needs an epsilon
    [TestCase("none", 0.01, false)]      // an epsilon without the jitter policy would be ignored
    [TestCase("gumbel", 0.0, false)]
    public void Validator_NoisyGateRules(string gate, double jitter, bool valid)
    {
        var cfg = new ZCodeConfig();
        cfg.Model.Moe.NoisyGate = gate;
        cfg.Model.Moe.Jitter = jitter;
        if (valid) Assert.DoesNotThrow(() => ConfigValidator.Validate(cfg));
        else Assert.That(() => ConfigValidator.Validate(cfg), Throws.InstanceOf<UserInputException>().With.Message.Contains("model.moe."));
    }
}
