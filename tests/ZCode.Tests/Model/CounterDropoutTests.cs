using TorchSharp;
using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Tests.Model;

/// <summary>Philox against its published known answers, the vector path against the scalar definition, and the
/// dropout built on it: keep rate, scale, determinism from the generator, gradients through the mask, row draws.</summary>
[NonParallelizable]   // draws from torch's global generator
public class CounterDropoutTests
{
    // Known-answer vectors of Random123's kat_vectors for philox4x32_10.
    [TestCase(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [TestCase(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [TestCase(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void PhiloxMatchesPublishedAnswers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint r0, uint r1, uint r2, uint r3)
        => Assert.That(Philox.Block(c0, c1, c2, c3, k0, k1), Is.EqualTo((r0, r1, r2, r3)));

    [TestCase(0L, 1000)]
    [TestCase(5L, 300)]     // starts inside a 32-element group, ends inside another
    [TestCase(1L << 33, 97)]  // counters past 32 bits
    public void FillEqualsTheScalarDefinitionForFloatAndHalfBits(long first, int length)
    {
        const ulong key = 0x0123456789abcdefUL;
        const uint threshold = 3_000_000_000;
        var floats = new float[length];
        var halves = new ushort[length];
        Philox.Fill<float>(floats, key, first, threshold, 2.5f);
        Philox.Fill<ushort>(halves, key, first, threshold, (ushort)0x4020);
        for (int i = 0; i < length; i++)
        {
            bool keep = Philox.Word(key, first + i) < threshold;
            Assert.That(floats[i], Is.EqualTo(keep ? 2.5f : 0f), $"float element {i}");
            Assert.That(halves[i], Is.EqualTo(keep ? (ushort)0x4020 : (ushort)0), $"16-bit element {i}");
        }
    }

    [TestCase(ScalarType.Float32)]
    [TestCase(ScalarType.BFloat16)]
    public void KeepsOneMinusPScaledByItsInverseAndReproducesFromTheSeed(ScalarType dtype)
    {
        const double p = 0.3;
        manual_seed(11);
        using var a = CounterDropout.Multipliers(new long[] { 64, 1000 }, p, dtype, CPU).to(ScalarType.Float32);
        manual_seed(11);
        using var b = CounterDropout.Multipliers(new long[] { 64, 1000 }, p, dtype, CPU).to(ScalarType.Float32);
        using var c = CounterDropout.Multipliers(new long[] { 64, 1000 }, p, dtype, CPU).to(ScalarType.Float32);
        // The scale LibTorch's dropout uses: 1 / (1 - p) in fp32, rounded to the mask's dtype.
        float scale = tensor(1.0f / (float)(1 - p)).to(dtype).to(ScalarType.Float32).item<float>();
        double kept = a.gt(0).sum().item<long>() / (double)a.numel();
        Assert.Multiple(() =>
        {
            Assert.That(TensorCompare.Same(a, b), Is.True, "same seed, same mask");
            Assert.That(TensorCompare.Same(a, c), Is.False, "the next draw is another mask");
            Assert.That(a.max().item<float>(), Is.EqualTo(scale));
            Assert.That(a.eq(0).logical_or(a.eq(scale)).all().item<bool>(), Is.True);
            Assert.That(kept, Is.EqualTo(0.7).Within(0.01));   // 64,000 draws: 5 standard deviations
        });
    }

    [Test]
    public void GradientsFlowThroughTheMaskAndEvaluationIsIdentity()
    {
        using var x = randn(new long[] { 8, 50 }, requires_grad: true);
        manual_seed(3);
        var y = CounterDropout.Apply(x, 0.5, training: true);
        y.sum().backward();
        manual_seed(3);
        using var mask = CounterDropout.Multipliers(new long[] { 8, 50 }, 0.5, ScalarType.Float32, CPU);
        Assert.Multiple(() =>
        {
            Assert.That(TensorCompare.Same(y.detach(), x.detach() * mask), Is.True);
            Assert.That(TensorCompare.Same(x.grad!, mask), Is.True);
            Assert.That(ReferenceEquals(CounterDropout.Apply(x, 0.5, training: false), x), Is.True);
        });
    }

    [Test]
    public void RowDrawsEqualThoseRowsOfTheWholeMask()
    {
        long[] shape = [4, 10, 70];
        long[] rows = [39, 0, 17, 17, 2];
        manual_seed(5);
        using var some = CounterDropout.Rows(shape, tensor(rows), 0.2, ScalarType.BFloat16, CPU);
        manual_seed(5);
        using var whole = CounterDropout.Multipliers(shape, 0.2, ScalarType.BFloat16, CPU);
        using var expected = whole.view(-1, 70).index_select(0, tensor(rows));
        Assert.That(TensorCompare.Same(some, expected), Is.True);
    }

    [Test]
    public void MasksDoNotDependOnTheThreadCount()
    {
        // Large enough to be filled in parts on two threads (rows: 3,000 rows of 300).
        long[] shape = [3, 1000, 300];
        var rows = tensor(Enumerable.Range(0, 3000).Select(i => (long)(i * 7 % 3000)).ToArray());
        using var _ = IntraOpThreads.Kept();
        Tensor Draw(int threads, bool someRows)
        {
            set_num_threads(threads);
            manual_seed(9);
            return someRows ? CounterDropout.Rows(shape, rows, 0.3, ScalarType.BFloat16, CPU)
                : CounterDropout.Multipliers(shape, 0.3, ScalarType.Float32, CPU);
        }
        using var one = Draw(1, false);
        using var two = Draw(2, false);
        using var oneRows = Draw(1, true);
        using var twoRows = Draw(2, true);
        Assert.That(TensorCompare.Same(one, two), Is.True, "whole mask");
        Assert.That(TensorCompare.Same(oneRows, twoRows), Is.True, "rows");
    }
}
