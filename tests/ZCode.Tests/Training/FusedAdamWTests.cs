using TorchSharp;
using ZCode.Training.Optimization;
using static TorchSharp.torch;

namespace ZCode.Tests.Training;

/// <summary>The CPU's fused AdamW against LibTorch's op-by-op update (bit for bit, over chunk and block boundaries, on
/// one or two threads, with a clipping scale), and its float64 sum of squares.</summary>
[NonParallelizable]
public class FusedAdamWTests
{
    // Past two chunks of 2^18 elements with a ragged tail; the decayed prefix ends inside the second chunk.
    private const long N = 700_001, Decayed = 300_007;
    private const double Lr = 3e-3, B1 = 0.9, B2 = 0.98, Eps = 1e-8, Wd = 0.01;

    private static (Tensor P, Tensor M, Tensor V, Tensor[] Grads) State()
    {
        using var g = new Generator(3);
        return (randn(new[] { N }, generator: g), zeros(N), zeros(N),
            Enumerable.Range(0, 3).Select(_ => randn(new[] { N }, generator: g) * 0.03).ToArray());
    }

    private static void OpByOp(Tensor p, Tensor m, Tensor v, Tensor g, long step)
    {
        double bc1 = 1 - Math.Pow(B1, step), bc2 = 1 - Math.Pow(B2, step);
        p.narrow(0, 0, Decayed).mul_(1 - Lr * Wd);
        m.mul_(B1).add_(g, alpha: 1 - B1);
        v.mul_(B2).addcmul_(g, g, value: 1 - B2);
        var denom = (v.sqrt() / Math.Sqrt(bc2)).add_(Eps);
        p.addcdiv_(m, denom, value: -(Lr / bc1));
    }

    private static long Differing(Tensor a, Tensor b) => a.ne(b).sum().item<long>();

    [TestCase(1)]
    [TestCase(2)]
    public void UpdateEqualsTheOpByOpUpdateBitForBit(int threads)
    {
        using var _ = IntraOpThreads.Kept(threads);
        var (p, m, v, grads) = State();
        var (fp, fm, fv) = (p.clone(), m.clone(), v.clone());
        using var scratch = FusedAdamW.Scratch(N);
        for (int step = 1; step <= grads.Length; step++)
        {
            // The second step's gradient is clipped: scaled in place first, or by the fused update's first pass.
            float scale = step == 2 ? 0.3712f : 1f;
            using var clipped = grads[step - 1].clone().mul_(tensor(scale));
            OpByOp(p, m, v, clipped, step);
            FusedAdamW.Update(fp, grads[step - 1], fm, fv, scratch, Decayed, AdamWScalars.For(Lr, B1, B2, Eps, Wd, step, scale));
        }
        Assert.That(Differing(fm, m), Is.Zero, "elements of the first moment that differ");
        Assert.That(Differing(fv, v), Is.Zero, "elements of the second moment that differ");
        Assert.That(Differing(fp, p), Is.Zero, "weights that differ");
    }

    [Test]
    public void SquareSumIsTheFloat64SumOfSquaresOnAnyThreadCount()
    {
        using var _ = IntraOpThreads.Kept();
        var g = State().Grads[0];
        double want = g.to(ScalarType.Float64).square().sum().item<double>();
        set_num_threads(1);
        double one = FusedAdamW.SquareSum(g);
        set_num_threads(2);
        double two = FusedAdamW.SquareSum(g);
        Assert.That(Math.Abs(one - want) / want, Is.LessThan(1e-12));
        Assert.That(two, Is.EqualTo(one), "the sum's order must not depend on the thread count");
    }
}
