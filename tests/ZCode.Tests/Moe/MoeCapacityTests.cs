using ZCode.Model.Moe;
using static TorchSharp.torch;

namespace ZCode.Tests.Moe;

[TestFixture]
public class MoeCapacityTests
{
    [TestCase(10, 4, 1, 1.0, 0, 3, TestName = "Capacity_TopOne_RoundsUp")]               // ceil(2.5)
    [TestCase(16, 4, 1, 1.0, 0, 4, TestName = "Capacity_TopOne_Exact")]                  // 4
    [TestCase(16, 4, 1, 1.25, 0, 5, TestName = "Capacity_TopOne_Factor")]                // 5
    [TestCase(10, 4, 2, 1.0, 0, 5, TestName = "Capacity_TopTwo_DoublesFactor")]          // ceil(2.5*2)
    [TestCase(10, 4, 2, 1.25, 0, 7, TestName = "Capacity_TopTwo_FactorRoundsUp")]        // ceil(6.25)
    [TestCase(16, 8, 1, 1.0, 4, 4, TestName = "Capacity_MinCapacityRaises")]             // max(2, 4)
    [TestCase(64, 8, 1, 1.0, 4, 8, TestName = "Capacity_MinCapacityInactive")]           // max(8, 4)
    [TestCase(3, 4, 1, 1.0, 4, 3, TestName = "Capacity_ClampedToTokens")]                // min(max(1,4), 3)
    [TestCase(2, 8, 1, 1.0, 0, 1, TestName = "Capacity_FewerTokensThanExperts")]         // ceil(0.25)
    [TestCase(2, 8, 2, 2.0, 0, 1, TestName = "Capacity_FewerTokensThanExperts_TopTwo")]  // ceil(0.25*4)
    [TestCase(10, 4, 1, 0.0, 4, 10, TestName = "Capacity_FactorZero_NoDropping")]        // C = S
    [TestCase(10, 4, 2, 0.0, 0, 10, TestName = "Capacity_FactorZero_TopTwo")]            // C = S
    [TestCase(0, 4, 1, 1.0, 4, 0, TestName = "Capacity_EmptyBatch")]
    [TestCase(200, 4, 1, 1.1, 0, 55, TestName = "Capacity_Float32Rounding_Down")]       // double: 55.000000000000007 -> 56
    [TestCase(100, 2, 1, 1.2, 0, 61, TestName = "Capacity_Float32Rounding_Up")]         // 1.2f*50 = 60.0000038 -> 61
    [TestCase(100, 4, 2, 1.1, 0, 55, TestName = "Capacity_Float32Rounding_TopTwo")]
    public void Capacity_MatchesHandArithmetic(long tokens, int experts, int topK, double cf, int minCap, long expected)
    {
        Assert.That(MoeRouting.Capacity(tokens, experts, topK, cf, minCap), Is.EqualTo(expected));
    }

    [Test]
    public void Capacity_Float32Rounding_DiffersFromDoubleMath()
    {
        // The reason for the float32 product: in double, (200/4) * 1.1 = 55.000000000000007 and 50 * 1.2 = 60.
        Assert.That(Math.Ceiling(200.0 / 4 * 1.1), Is.EqualTo(56));
        Assert.That(Math.Ceiling(100.0 / 2 * 1.2), Is.EqualTo(60));
        Assert.That(MoeRouting.Capacity(200, 4, 1, 1.1, 0), Is.EqualTo(55));
        Assert.That(MoeRouting.Capacity(100, 2, 1, 1.2, 0), Is.EqualTo(61));
    }

    [Test]
    public void Capacity_MatchesLibTorchEvaluationOfDeepSpeedExpression()
    {
        // DeepSpeed: torch.ceil((S / E) * torch.tensor(k * cf)), a Python float times a float32 tensor.
        foreach (double cf in new[] { 0.3, 0.7, 1.0, 1.1, 1.2, 1.25, 1.3, 2.0 })
        foreach (int k in new[] { 1, 2 })
        foreach (int e in new[] { 2, 3, 4, 8, 64 })
        for (long s = 1; s <= 300; s += 7)
        {
            using var factor = tensor((float)(k * cf));
            using var product = factor * ((double)s / e);
            using var ceil = product.ceil();
            long expected = Math.Min((long)ceil.item<float>(), s);
            Assert.That(MoeRouting.Capacity(s, e, k, cf, 0), Is.EqualTo(expected), $"S={s} E={e} k={k} cf={cf}");
        }
    }

    [Test]
    public void Capacity_RejectsInvalidArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MoeRouting.Capacity(-1, 4, 1, 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MoeRouting.Capacity(8, 0, 1, 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MoeRouting.Capacity(8, 4, 5, 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MoeRouting.Capacity(8, 4, 1, -0.5, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MoeRouting.Capacity(8, 4, 1, double.NaN, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MoeRouting.Capacity(8, 4, 1, 1, -1));
    }
}
