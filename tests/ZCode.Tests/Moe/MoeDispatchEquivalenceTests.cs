using TorchSharp;
using ZCode.Model.Moe;
using static TorchSharp.torch;
using static ZCode.Tests.Moe.MoeTestUtil;

namespace ZCode.Tests.Moe;

/// <summary>
/// The index dispatch of <see cref="MoeLayer"/> against the one-hot einsum dispatch of <see cref="MoeEinsumDispatch"/>
/// on the same routing: outputs and every gradient within 1e-5, for top-1/top-2, with and without drops, for all
/// three priorities (the same layer seed gives both paths the same random priorities).
/// </summary>
[TestFixture]
public class MoeDispatchEquivalenceTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (int k in new[] { 1, 2 })
        foreach (double cf in new[] { 8.0, 0.5 })
        foreach (string priority in new[] { "order", "random", "score" })
            yield return new TestCaseData(k, cf, priority).SetName($"IndexMatchesEinsum_Top{k}_{(cf < 1 ? "WithDrops" : "NoDrops")}_{priority}");
    }

    [TestCaseSource(nameof(Cases))]
    public void IndexDispatch_MatchesEinsumDispatch_OutputsAndGradients(int topK, double cf, string priority)
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        const int e = 4, d = 6, f = 10, tokens = 24;
        using var layer = new MoeLayer("moe", d, f, Cfg(e, topK, cf: cf, priority: priority)) { Seed = 99 };
        layer.train();
        var xData = randn(tokens, d);
        var upstream = randn(tokens, d);

        (Tensor Y, Tensor GradX, Dictionary<string, Tensor> Grads, long Dropped) Run(bool einsumPath, bool packed = false)
        {
            layer.zero_grad();
            layer.Seed = 99;   // restart the layer's generator: identical random priorities on both paths
            var x = xData.clone().requires_grad_(true);
            var r = layer.RouteTokens(x, null);
            Tensor y;
            if (einsumPath)
            {
                y = MoeEinsumDispatch.Forward(layer, x, r, out _);
            }
            else if (packed)
            {
                y = layer.RunExperts(x, r);   // the forward's path: per-expert matmuls on the kept rows only
            }
            else
            {
                var plan = MoeDispatchPlan.From(r);
                y = layer.Combine(layer.ExpertForward(layer.Dispatch(x, plan, r.Capacity)), plan, tokens);
            }
            ((y * upstream).sum() + r.AuxLoss * 0.3).backward();
            var grads = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
            return (y.detach(), x.grad!.clone(), grads, r.Dropped);
        }

        var index = Run(einsumPath: false);
        var dense = Run(einsumPath: true);
        var packedRun = Run(einsumPath: false, packed: true);
        Assert.That(MaxDiff(packedRun.Y, dense.Y), Is.LessThan(1e-5), "packed output");
        Assert.That(MaxDiff(packedRun.GradX, dense.GradX), Is.LessThan(1e-5), "packed grad x");
        foreach (var name in packedRun.Grads.Keys)
            Assert.That(MaxDiff(packedRun.Grads[name], dense.Grads[name]), Is.LessThan(1e-5), $"packed grad {name}");
        if (cf < 1) Assert.That(index.Dropped, Is.GreaterThan(0), "the case needs drops");
        else Assert.That(index.Dropped, Is.EqualTo(0));
        Assert.That(dense.Dropped, Is.EqualTo(index.Dropped), "same routing");
        Assert.That(MaxDiff(index.Y, dense.Y), Is.LessThan(1e-5), "output");
        Assert.That(MaxDiff(index.GradX, dense.GradX), Is.LessThan(1e-5), "grad x");
        foreach (var name in index.Grads.Keys)
            Assert.That(MaxDiff(index.Grads[name], dense.Grads[name]), Is.LessThan(1e-5), $"grad {name}");
        Assert.That(index.Grads["router.weight"].abs().sum().item<float>(), Is.GreaterThan(0f), "router gets a gradient");
    }

    [Test]
    public void Forward_EqualsRouteDispatchExpertForwardCombine()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var layer = new MoeLayer("moe", 6, 8, Cfg(4, 2, cf: 1.0));
        layer.eval();
        var x = randn(2, 5, 6);
        var y = layer.forward(x, null);
        var x2 = x.view(10, 6);
        var r = layer.RouteTokens(x2, null);
        var plan = MoeDispatchPlan.From(r);
        var dispatched = layer.Dispatch(x2, plan, r.Capacity);
        Assert.That(dispatched.shape, Is.EqualTo(new long[] { 4, r.Capacity, 6 }));
        var expertOut = layer.ExpertForward(dispatched);
        Assert.That(expertOut.shape, Is.EqualTo(dispatched.shape));
        Assert.That(MaxDiff(layer.Combine(expertOut, plan, 10).view(2, 5, 6), y), Is.EqualTo(0.0));
        Assert.That(layer.LastInputShape, Is.EqualTo(new long[] { 2, 5 }), "set by forward, from its input");
    }

    [Test]
    public void ExpertForward_IsEachExpertsFfnOnItsSlice_AndRejectsWrongShapes()
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        using var layer = new MoeLayer("moe", 6, 8, Cfg(3, 1));
        var p = layer.named_parameters().ToDictionary(n => n.name, n => n.parameter);
        var buffer = randn(3, 5, 6);
        var y = layer.ExpertForward(buffer);
        for (int e = 0; e < 3; e++)
        {
            var h = nn.functional.relu(buffer[e].matmul(p["w1"][e]) + p["b1"][e]);
            Assert.That(MaxDiff(y[e], h.matmul(p["w2"][e]) + p["b2"][e]), Is.LessThan(1e-5), $"expert {e}");
        }
        Assert.Throws<ArgumentException>(() => layer.ExpertForward(randn(2, 5, 6)));
        Assert.Throws<ArgumentException>(() => layer.ExpertForward(randn(3, 5, 7)));
    }

    [Test]
    public void RandomTokenSelection_RemovesPositionalDropBias_OrderKeepsIt()
    {
        // Every token prefers expert 0 (zero router: equal logits, argmax 0); capacity holds half of them.
        // Order priority always drops the later half; RTS drops every position about equally often.
        const int s = 16, trials = 300;
        double LateMinusEarly(string priority)
        {
            using var layer = new MoeLayer("moe", 4, 8, Cfg(2, 1, cf: 1.0, priority: priority)) { Seed = 5 };
            using (no_grad()) layer.Router.weight!.zero_();
            layer.train();
            var droppedAt = new int[s];
            using var x = randn(s, 4);
            for (int t = 0; t < trials; t++)
            {
                using var scope = NewDisposeScope();
                var y = layer.forward(x, null);
                var zero = Floats(y.abs().sum(dim: 1).eq(0).to(ScalarType.Float32));
                for (int i = 0; i < s; i++) if (zero[i] > 0) droppedAt[i]++;
            }
            Assert.That(droppedAt.Sum(), Is.EqualTo(trials * s / 2), "capacity 8 of 16 tokens");
            double early = droppedAt.Take(s / 2).Sum() / (double)(trials * s / 2);
            double late = droppedAt.Skip(s / 2).Sum() / (double)(trials * s / 2);
            return late - early;
        }
        Assert.That(LateMinusEarly("order"), Is.EqualTo(1.0), "order: late tokens always dropped, early never");
        Assert.That(Math.Abs(LateMinusEarly("random")), Is.LessThan(0.08), "RTS: no positional bias");
    }

    [TestCase(1, 8.0, 0.0)]
    [TestCase(2, 0.5, 0.0)]
    [TestCase(2, 1.25, 0.3)]
    public void PackedPath_PaddedSegments_GiveTheUnpaddedOutputsAndGradients(int topK, double cf, double expertDropout)
    {
        // Rows rounded up per expert (what 16-bit CPU training does to keep oneDNN's kernel cache warm) must not change
        // any output, input gradient or weight gradient: padding rows read zeros, weigh 0 and land in a cut-off row.
        // Checked in fp32, where the unpadded path is the reference; masked tokens, drops and expert dropout included.
        using var scope = NewDisposeScope();
        manual_seed(11);
        const int e = 4, d = 6, f = 10, tokens = 37;
        using var layer = new MoeLayer("moe", d, f, Cfg(e, topK, cf: cf, expertDropout: expertDropout)) { Seed = 5 };
        layer.train();
        using (no_grad())
            foreach (var (name, p) in layer.named_parameters())
                if (name.StartsWith('b')) p.normal_();   // nonzero biases: a padding row that reached a token would show
        var xData = randn(tokens, d);
        var upstream = randn(tokens, d);
        var mask = arange(tokens).remainder(5).ne(3);

        (Tensor Y, Tensor GradX, Dictionary<string, Tensor> Grads) Run(int rowMultiple)
        {
            layer.zero_grad();
            layer.Seed = 5;
            manual_seed(12);   // expert dropout draws from the global generator's counter
            var x = xData.clone().requires_grad_(true);
            var r = layer.RouteTokens(x, mask);
            var y = layer.RunExperts(x, r, rowMultiple);
            (y * upstream).sum().backward();
            return (y.detach(), x.grad!.clone(), layer.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()));
        }

        var plain = Run(1);
        foreach (int multiple in new[] { 8, 16 })
        {
            var padded = Run(multiple);
            Assert.That(MaxDiff(padded.Y, plain.Y), Is.LessThan(1e-6), $"output, rows rounded to {multiple}");
            Assert.That(MaxDiff(padded.GradX, plain.GradX), Is.LessThan(1e-6), $"grad x, rows rounded to {multiple}");
            foreach (var name in plain.Grads.Keys)
                Assert.That(MaxDiff(padded.Grads[name], plain.Grads[name]), Is.LessThan(1e-6), $"grad {name}, rows rounded to {multiple}");
        }
        Assert.That(plain.Y.abs().sum(dim: 1).masked_select(mask.logical_not()).abs().max().item<float>(), Is.EqualTo(0f),
            "masked tokens get exactly zero");
        Assert.That(MoeLayer.SegmentRowMultiple(ScalarType.BFloat16), Is.EqualTo(16), "16-bit CPU training pads");
        Assert.That(MoeLayer.SegmentRowMultiple(ScalarType.Float32), Is.EqualTo(1), "fp32 runs unpadded, bit for bit as before");
    }
}
