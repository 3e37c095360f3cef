using TorchSharp;
using ZCode.Model.Moe;
using static TorchSharp.torch;
using static ZCode.Tests.Moe.MoeTestUtil;

namespace ZCode.Tests.Moe;

[TestFixture]
public class MoeLayerTests
{
    [SetUp]
    public void Seed() => manual_seed(42);

    private static Tensor RouterWeight(MoeLayer layer) => layer.Router.weight!;

    private static Tensor Param(MoeLayer layer, string name) =>
        layer.named_parameters().First(p => p.name == name).parameter;

    [Test]
    public void Parameters_HaveRegisteredNamesAndShapes()
    {
        using var layer = new MoeLayer("moe", 6, 10, Cfg(4, 1));
        var shapes = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.That(shapes.Keys, Is.EquivalentTo(new[] { "router.weight", "w1", "b1", "w2", "b2" }));
        Assert.That(shapes["router.weight"], Is.EqualTo(new long[] { 4, 6 }));
        Assert.That(shapes["w1"], Is.EqualTo(new long[] { 4, 6, 10 }));
        Assert.That(shapes["b1"], Is.EqualTo(new long[] { 4, 10 }));
        Assert.That(shapes["w2"], Is.EqualTo(new long[] { 4, 10, 6 }));
        Assert.That(shapes["b2"], Is.EqualTo(new long[] { 4, 6 }));
        Assert.That(Floats(Param(layer, "b1")), Is.All.EqualTo(0f));
        Assert.That(Param(layer, "w1").abs().max().item<float>(), Is.LessThanOrEqualTo(1 / Math.Sqrt(6) + 1e-6));
        Assert.That(Param(layer, "w2").abs().max().item<float>(), Is.LessThanOrEqualTo(1 / Math.Sqrt(10) + 1e-6));
        Assert.That(layer.Experts, Is.EqualTo(4));
    }

    [TestCase(1)]
    [TestCase(2)]
    public void MatchesEinsumReference_OutputAndGradients_WhenNothingDropped(int topK)
    {
        using var scope = NewDisposeScope();
        const int e = 4, d = 6, f = 10;
        using var layer = new MoeLayer("moe", d, f, Cfg(e, topK, cf: 4.0));
        layer.train();

        var xData = randn(3, 4, d);
        var r = randn(3, 4, d);
        var x = xData.clone().requires_grad_(true);
        var y = layer.forward(x, null);
        (y * r).sum().add(layer.AuxLoss! * 0.3).add(layer.ZLoss! * 0.2).backward();
        Assert.That(layer.LastStats!.Dropped, Is.EqualTo(0));
        Assert.That(layer.LastCapacity, Is.EqualTo(12));

        var xr = xData.clone().requires_grad_(true);
        Tensor Leaf(Tensor t) => t.detach().clone().requires_grad_(true);
        var wr = Leaf(RouterWeight(layer));
        var w1 = Leaf(Param(layer, "w1"));
        var b1 = Leaf(Param(layer, "b1"));
        var w2 = Leaf(Param(layer, "w2"));
        var b2 = Leaf(Param(layer, "b2"));
        var refOut = MoeEinsumReference.Forward(xr.reshape(12, d), wr, w1, b1, w2, b2, topK, capacity: 12);
        (refOut.Y.view(3, 4, d) * r).sum().add(refOut.Aux * 0.3).add(refOut.Z * 0.2).backward();

        Assert.That(MaxDiff(y, refOut.Y.view(3, 4, d)), Is.LessThan(1e-5), "output");
        Assert.That(layer.AuxLoss!.item<float>(), Is.EqualTo(refOut.Aux.item<float>()).Within(1e-6), "aux");
        Assert.That(layer.ZLoss!.item<float>(), Is.EqualTo(refOut.Z.item<float>()).Within(1e-5), "z");
        Assert.That(MaxDiff(x.grad!, xr.grad!), Is.LessThan(1e-5), "grad x");
        Assert.That(MaxDiff(RouterWeight(layer).grad!, wr.grad!), Is.LessThan(1e-5), "grad router");
        Assert.That(MaxDiff(Param(layer, "w1").grad!, w1.grad!), Is.LessThan(1e-5), "grad w1");
        Assert.That(MaxDiff(Param(layer, "b1").grad!, b1.grad!), Is.LessThan(1e-5), "grad b1");
        Assert.That(MaxDiff(Param(layer, "w2").grad!, w2.grad!), Is.LessThan(1e-5), "grad w2");
        Assert.That(MaxDiff(Param(layer, "b2").grad!, b2.grad!), Is.LessThan(1e-5), "grad b2");
        Assert.That(RouterWeight(layer).grad!.abs().sum().item<float>(), Is.GreaterThan(0f));
    }

    [TestCase(1)]
    [TestCase(2)]
    public void MatchesEinsumReference_WithDrops_OrderPriority(int topK)
    {
        using var scope = NewDisposeScope();
        const int e = 4, d = 6, f = 8;
        using var layer = new MoeLayer("moe", d, f, Cfg(e, topK, cf: 0.5));
        layer.train();
        var x = randn(16, d);
        var y = layer.forward(x, null);
        long c = layer.LastCapacity;
        Assert.That(c, Is.EqualTo(MoeRouting.Capacity(16, e, topK, 0.5, 0)));
        Assert.That(layer.LastStats!.Dropped, Is.GreaterThan(0), "the test needs drops");

        var refOut = MoeEinsumReference.Forward(x, RouterWeight(layer).detach(), Param(layer, "w1").detach(),
            Param(layer, "b1").detach(), Param(layer, "w2").detach(), Param(layer, "b2").detach(), topK, c);
        Assert.That(MaxDiff(y, refOut.Y), Is.LessThan(1e-5));
    }

    [Test]
    public void DroppedToken_OutputIsExactlyZero()
    {
        using var scope = NewDisposeScope();
        using var layer = new MoeLayer("moe", 4, 8, Cfg(2, 1, cf: 1.0, evalCf: 1.0));
        using (no_grad()) RouterWeight(layer).zero_();   // equal logits: every token picks expert 0
        layer.eval();

        var y = layer.forward(randn(8, 4), null);   // C = ceil(8/2) = 4: tokens 4..7 dropped
        Assert.That(layer.LastCapacity, Is.EqualTo(4));
        Assert.That(layer.LastStats!.Dropped, Is.EqualTo(4));
        Assert.That(layer.LastStats.DroppedFraction, Is.EqualTo(0.5));
        Assert.That(layer.LastStats.TokensPerExpert, Is.EqualTo(new long[] { 4, 0 }));
        var rows = Floats(y);
        for (int t = 0; t < 8; t++)
        {
            var row = rows.Skip(t * 4).Take(4).ToArray();
            if (t < 4) Assert.That(row.Any(v => v != 0f), $"token {t} kept");
            else Assert.That(row, Is.All.EqualTo(0f), $"token {t} dropped");
        }
    }

    [Test]
    public void AllTokensToOneExpert_CapacityFactorZero_NothingDropped_GateIsRawProbability()
    {
        using var scope = NewDisposeScope();
        const int e = 4, d = 5, f = 7;
        using var layer = new MoeLayer("moe", d, f, Cfg(e, 1, cf: 0.0, minCapacity: 2));
        using (no_grad()) RouterWeight(layer).zero_();
        layer.train();

        var x = randn(10, d);
        var y = layer.forward(x, null);
        Assert.That(layer.LastCapacity, Is.EqualTo(10));
        Assert.That(layer.LastStats!.Dropped, Is.EqualTo(0));
        Assert.That(layer.LastStats.TokensPerExpert, Is.EqualTo(new long[] { 10, 0, 0, 0 }));

        var hidden = functional_relu(x.matmul(Param(layer, "w1")[0]) + Param(layer, "b1")[0]);
        var expected = (hidden.matmul(Param(layer, "w2")[0]) + Param(layer, "b2")[0]) * (1.0f / e);
        Assert.That(MaxDiff(y, expected), Is.LessThan(1e-5));
    }

    private static Tensor functional_relu(Tensor t) => nn.functional.relu(t);

    [Test]
    public void TokenMask_MaskedTokensZero_ExcludedFromCountsAndAux()
    {
        using var scope = NewDisposeScope();
        const int d = 6;
        using var layer = new MoeLayer("moe", d, 8, Cfg(3, 2, cf: 8.0));
        layer.train();
        var x = randn(2, 5, d);
        var mask = tensor(new[] { true, true, false, true, false, true, true, true, false, false }).view(2, 5);

        var y = layer.forward(x, mask);
        var stats = layer.LastStats!;
        float aux = layer.AuxLoss!.item<float>();
        float z = layer.ZLoss!.item<float>();

        var maskFlat = Bools(mask);
        var rows = Floats(y);
        for (int t = 0; t < 10; t++)
            if (!maskFlat[t]) Assert.That(rows.Skip(t * d).Take(d), Is.All.EqualTo(0f), $"masked token {t}");
        Assert.That(stats.Routed, Is.EqualTo(6));
        Assert.That(stats.TokensPerExpert.Sum(), Is.EqualTo(12));

        // Same as routing only the real tokens.
        var realIdx = tensor(Enumerable.Range(0, 10).Where(i => maskFlat[i]).Select(i => (long)i).ToArray());
        var xReal = x.view(10, d).index_select(0, realIdx);
        var yReal = layer.forward(xReal, null);
        Assert.That(MaxDiff(y.view(10, d).index_select(0, realIdx), yReal), Is.LessThan(1e-6));
        Assert.That(layer.LastStats!.TokensPerExpert, Is.EqualTo(stats.TokensPerExpert));
        Assert.That(layer.AuxLoss!.item<float>(), Is.EqualTo(aux).Within(1e-6));
        Assert.That(layer.ZLoss!.item<float>(), Is.EqualTo(z).Within(1e-5));
    }

    [Test]
    public void EmptyBatch_ReturnsEmptyOutput()
    {
        using var scope = NewDisposeScope();
        using var layer = new MoeLayer("moe", 4, 8, Cfg(4, 2, minCapacity: 4, priority: "random", jitter: 0.01));
        layer.train();
        var x = zeros(0, 5, 4).requires_grad_(true);
        var y = layer.forward(x, zeros(new long[] { 0, 5 }, ScalarType.Bool));
        Assert.That(y.shape, Is.EqualTo(new long[] { 0, 5, 4 }));
        Assert.That(layer.LastCapacity, Is.EqualTo(0));
        Assert.That(layer.LastStats!.Routed, Is.EqualTo(0));
        Assert.That(layer.LastStats.DroppedFraction, Is.EqualTo(0.0));
        Assert.That(layer.AuxLoss!.item<float>(), Is.EqualTo(0f));
        (y.sum() + layer.AuxLoss).backward();   // must not throw
    }

    [Test]
    public void FewerTokensThanExperts_Works()
    {
        using var scope = NewDisposeScope();
        using var layer = new MoeLayer("moe", 4, 8, Cfg(8, 2, cf: 1.0, minCapacity: 4));
        layer.train();
        var x = randn(1, 2, 4).requires_grad_(true);
        var y = layer.forward(x, null);
        Assert.That(y.shape, Is.EqualTo(new long[] { 1, 2, 4 }));
        Assert.That(layer.LastCapacity, Is.EqualTo(2));           // min capacity 4, clamped to S = 2
        Assert.That(layer.LastStats!.Dropped, Is.EqualTo(0));
        y.sum().backward();
        Assert.That(x.grad, Is.Not.Null);
    }

    [Test]
    public void Eval_IsDeterministic_EvenWithRandomPriorityJitterAndGumbel()
    {
        using var scope = NewDisposeScope();
        using var layer = new MoeLayer("moe", 6, 8, Cfg(4, 2, cf: 0.5, evalCf: 0.5, priority: "random", jitter: 0.1))
        {
            SecondExpertGumbel = true,
        };
        layer.eval();
        Assert.That(layer.EvalPriority, Is.EqualTo(TokenPriority.Order));
        var x = randn(32, 6);
        var a = layer.forward(x, null);
        long dropped = layer.LastStats!.Dropped;
        var b = layer.forward(x, null);
        Assert.That(dropped, Is.GreaterThan(0), "the test needs drops for priority to matter");
        Assert.That(Floats(a), Is.EqualTo(Floats(b)));

        // And equal to an order-priority layer with the same weights.
        using var orderLayer = new MoeLayer("moe", 6, 8, Cfg(4, 2, cf: 0.5, evalCf: 0.5, priority: "order"));
        orderLayer.load_state_dict(layer.state_dict());
        orderLayer.eval();
        Assert.That(Floats(orderLayer.forward(x, null)), Is.EqualTo(Floats(a)));
    }

    [Test]
    public void Training_RandomPriority_ReproducibleFromSeed_AndVariesAcrossSteps()
    {
        using var scope = NewDisposeScope();
        var cfg = Cfg(2, 1, cf: 0.5, priority: "random", jitter: 0.05);
        using var a = new MoeLayer("moe", 4, 8, cfg) { Seed = 5 };
        using var b = new MoeLayer("moe", 4, 8, cfg) { Seed = 5 };
        b.load_state_dict(a.state_dict());
        a.train();
        b.train();
        var x = randn(24, 4);
        var ya1 = Floats(a.forward(x, null));
        var yb1 = Floats(b.forward(x, null));
        var ya2 = Floats(a.forward(x, null));
        Assert.That(yb1, Is.EqualTo(ya1));
        Assert.That(ya2, Is.Not.EqualTo(ya1));

        using var gen = new Generator(5);
        b.Generator = gen;   // an explicit generator with the same seed reproduces the owned one
        b.Seed = 5;
        var yb2 = Floats(b.forward(x, null));
        Assert.That(yb2, Is.EqualTo(ya1));
    }

    [Test]
    public void Bf16Input_ProducesBf16Output_CloseToFp32()
    {
        using var scope = NewDisposeScope();
        using var layer = new MoeLayer("moe", 8, 16, Cfg(4, 2, cf: 4.0));
        layer.train();
        var x = randn(10, 8);
        var y32 = layer.forward(x, null);
        var xb = x.to(ScalarType.BFloat16).requires_grad_(true);
        var yb = layer.forward(xb, null);
        Assert.That(yb.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(MaxDiff(yb, y32), Is.LessThan(0.1));
        yb.to(ScalarType.Float32).sum().backward();
        Assert.That(xb.grad, Is.Not.Null);
        Assert.That(Param(layer, "w1").grad, Is.Not.Null);
    }

    [Test]
    public void ExpertDropout_OnlyInTraining()
    {
        using var scope = NewDisposeScope();
        using var layer = new MoeLayer("moe", 6, 32, Cfg(2, 1, cf: 4.0, expertDropout: 0.5));
        var x = randn(8, 6);
        layer.eval();
        var e1 = Floats(layer.forward(x, null));
        var e2 = Floats(layer.forward(x, null));
        Assert.That(e2, Is.EqualTo(e1));
        layer.train();
        var t1 = Floats(layer.forward(x, null));
        Assert.That(t1, Is.Not.EqualTo(e1));
    }

    [Test]
    public void LayerCastToBf16_RouterStillComputesInFp32()
    {
        using var scope = NewDisposeScope();
        using var layer = new MoeLayer("moe", 8, 16, Cfg(4, 1, cf: 4.0));
        layer.to(ScalarType.BFloat16);
        layer.train();
        var y = layer.forward(randn(6, 8).to(ScalarType.BFloat16), null);
        Assert.That(y.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(layer.AuxLoss!.dtype, Is.EqualTo(ScalarType.Float32));
    }
}
