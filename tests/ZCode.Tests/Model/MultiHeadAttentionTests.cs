using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Tests.Model;

/// <summary>16-bit CPU training attends with explicit matmuls around an fp32 softmax (fused attention in fp32 for long
/// keys); either must give LibTorch's fused attention's answer (same masks: causal, padded keys) to bf16 precision, and
/// gradients that agree.</summary>
public class MultiHeadAttentionTests
{
    private const int B = 3, L = 9, D = 32, H = 4;
    // Heads x keys past the explicit form's limit (2048): the long-key path.
    private const int LongL = 600;

    private static (Tensor Out, Tensor Grad) Run(MultiHeadAttention mha, Tensor x, Tensor keyMask, bool causal, bool training, ScalarType dtype)
    {
        mha.train(training);
        var input = x.to(dtype).detach().requires_grad_(true);
        var output = mha.call(input, input, keyMask, causal).to(ScalarType.Float32);
        using var weights = linspace(-1, 1, output.numel()).view(output.shape);
        (output * weights).sum().backward();
        return (output.detach(), input.grad!.to(ScalarType.Float32));
    }

    [TestCase(false, L)]
    [TestCase(true, L)]
    [TestCase(true, LongL)]
    public void TrainingInBf16MatchesFusedAttentionInFp32(bool causal, int length)
    {
        manual_seed(11);
        var mha = new MultiHeadAttention("attn", D, H, attentionDropout: 0.0);
        var x = randn(B, length, D);
        // The second sequence has its keys from the sixth on padded, the third its last one.
        var keyMask = ones(B, length, dtype: ScalarType.Bool);
        keyMask[1, TensorIndex.Slice(5, null)] = tensor(false);
        keyMask[2, length - 1] = tensor(false);

        var (want, wantGrad) = Run(mha, x, keyMask, causal, training: false, ScalarType.Float32);
        var (got, gotGrad) = Run(mha, x, keyMask, causal, training: true, ScalarType.BFloat16);

        double scale = want.abs().max().item<float>(), gradScale = wantGrad.abs().max().item<float>();
        Assert.That((got - want).abs().max().item<float>(), Is.LessThan(0.03 * scale), "outputs");
        Assert.That((gotGrad - wantGrad).abs().max().item<float>(), Is.LessThan(0.03 * gradScale), "input gradients");
    }

    [Test]
    public void ExplicitAttentionDropsTheWeightsOfCounterDropoutsMask()
    {
        const double p = 0.3;
        manual_seed(5);
        var (q, k, v) = (randn(2, H, L, 8).to(ScalarType.BFloat16), randn(2, H, L, 8).to(ScalarType.BFloat16),
            randn(2, H, L, 8).to(ScalarType.BFloat16));
        var causal = ones(L, L, dtype: ScalarType.Bool).tril();

        manual_seed(21);
        var got = MultiHeadAttention.ExplicitAttention(q, k, v, causal, p).to(ScalarType.Float32);
        manual_seed(21);   // the same one draw keys the mask
        using var keep = CounterDropout.Multipliers(new long[] { 2, H, L, L }, p, ScalarType.Float32, CPU);
        var scores = matmul(q, k.transpose(-2, -1)).to(ScalarType.Float32) * (1.0 / Math.Sqrt(8));
        var weights = scores.masked_fill(causal.logical_not(), double.NegativeInfinity).softmax(-1) * keep;
        var want = matmul(weights.to(ScalarType.BFloat16), v).to(ScalarType.Float32);

        Assert.That(TensorCompare.Same(got, want), Is.True);
        Assert.That(keep.eq(0).any().item<bool>(), Is.True, "the mask dropped something");
    }
}
