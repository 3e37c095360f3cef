using ZCode.Model.Moe;
using static TorchSharp.torch;
using static ZCode.Tests.Moe.MoeTestUtil;

namespace ZCode.Tests.Moe;

[TestFixture]
public class MoeRoutingTests
{
    // Three tokens, three experts. First choices: 1, 2, 0. Second choices: 0, 0, 2.
    private static readonly double[][] Rows =
    {
        new[] { 1.0, 2.0, 0.5 },
        new[] { 0.3, -1.0, 0.8 },
        new[] { 2.0, 0.1, 0.2 },
    };

    private static Tensor HandLogits() =>
        Logits(3, 3, Rows.SelectMany(r => r.Select(v => (float)v)).ToArray());

    private static double P(int token, int expert) => Softmax(Rows[token])[expert];

    [Test]
    public void TopOne_SelectsArgmax_GateIsRawProbability()
    {
        using var scope = NewDisposeScope();
        var r = MoeRouting.Route(HandLogits(), null, topK: 1, capacity: 3, TokenPriority.Order);

        Assert.That(Longs(r.ExpertIndex), Is.EqualTo(new long[] { 1, 2, 0 }));
        Assert.That(Longs(r.TokenIndex), Is.EqualTo(new long[] { 0, 1, 2 }));
        Assert.That(Longs(r.Position), Is.EqualTo(new long[] { 0, 0, 0 }));
        Assert.That(Bools(r.Kept), Is.All.True);
        var gate = Floats(r.Gate);
        Assert.That(gate[0], Is.EqualTo(P(0, 1)).Within(1e-6));
        Assert.That(gate[1], Is.EqualTo(P(1, 2)).Within(1e-6));
        Assert.That(gate[2], Is.EqualTo(P(2, 0)).Within(1e-6));
        Assert.That(Longs(r.TokensPerExpert), Is.EqualTo(new long[] { 1, 1, 1 }));
        Assert.That(r.TokensPerExpertCounts, Is.EqualTo(new long[] { 1, 1, 1 }));
        Assert.That(r.Dropped, Is.EqualTo(0));
        Assert.That(r.RoutedTokens, Is.EqualTo(3));
    }

    [Test]
    public void TopTwo_SecondChoiceIsMaskedArgmax_GatesRenormalised()
    {
        using var scope = NewDisposeScope();
        var r = MoeRouting.Route(HandLogits(), null, topK: 2, capacity: 3, TokenPriority.Order);

        Assert.That(Longs(r.ExpertIndex), Is.EqualTo(new long[] { 1, 2, 0, 0, 0, 2 }));
        Assert.That(Longs(r.TokenIndex), Is.EqualTo(new long[] { 0, 1, 2, 0, 1, 2 }));
        // Second choices queue behind all first choices of their expert: expert 0 has one first choice
        // (token 2), so token 0's second choice is at 1 and token 1's at 2; expert 2 has one (token 1).
        Assert.That(Longs(r.Position), Is.EqualTo(new long[] { 0, 0, 0, 1, 2, 1 }));
        Assert.That(Bools(r.Kept), Is.All.True);

        (int first, int second)[] choice = { (1, 0), (2, 0), (0, 2) };
        var gate = Floats(r.Gate);
        for (int t = 0; t < 3; t++)
        {
            double g1 = P(t, choice[t].first), g2 = P(t, choice[t].second);
            Assert.That(gate[t], Is.EqualTo(g1 / (g1 + g2)).Within(1e-6), $"token {t} first");
            Assert.That(gate[3 + t], Is.EqualTo(g2 / (g1 + g2)).Within(1e-6), $"token {t} second");
        }
        Assert.That(Longs(r.TokensPerExpert), Is.EqualTo(new long[] { 3, 1, 2 }));
        Assert.That(r.RoutedTokens, Is.EqualTo(3));
    }

    [Test]
    public void TopTwo_DroppedSecondChoice_FirstChoiceGetsWeightOne()
    {
        using var scope = NewDisposeScope();
        // Capacity 2: expert 0's queue is [token 2 (1st), token 0 (2nd), token 1 (2nd)], so token 1's second choice drops.
        var r = MoeRouting.Route(HandLogits(), null, topK: 2, capacity: 2, TokenPriority.Order);

        Assert.That(Bools(r.Kept), Is.EqualTo(new[] { true, true, true, true, false, true }));
        var gate = Floats(r.Gate);
        Assert.That(gate[1], Is.EqualTo(1.0).Within(1e-6));
        Assert.That(gate[4], Is.EqualTo(0.0));
        double g1 = P(0, 1), g2 = P(0, 0);
        Assert.That(gate[0], Is.EqualTo(g1 / (g1 + g2)).Within(1e-6));
        Assert.That(r.Dropped, Is.EqualTo(1));
        Assert.That(Longs(r.TokensPerExpert), Is.EqualTo(new long[] { 2, 1, 2 }));
    }

    [Test]
    public void TopTwo_EverythingDropped_GatesZeroNotNaN()
    {
        using var scope = NewDisposeScope();
        var r = MoeRouting.Route(HandLogits(), null, topK: 2, capacity: 0, TokenPriority.Order);
        Assert.That(Bools(r.Kept), Is.All.False);
        Assert.That(Floats(r.Gate), Is.All.EqualTo(0.0f));
        Assert.That(r.Dropped, Is.EqualTo(6));
    }

    [Test]
    public void AuxLoss_MatchesHandComputation_TopOneAndTopTwo()
    {
        using var scope = NewDisposeScope();
        // f = fraction of first choices = (1/3, 1/3, 1/3); P_e = mean probability.
        double expected = 0;
        for (int e = 0; e < 3; e++)
        {
            double pe = (P(0, e) + P(1, e) + P(2, e)) / 3;
            expected += (1.0 / 3) * pe;
        }
        expected *= 3;

        var r1 = MoeRouting.Route(HandLogits(), null, 1, 3, TokenPriority.Order);
        var r2 = MoeRouting.Route(HandLogits(), null, 2, 1, TokenPriority.Order);   // drops do not change it
        Assert.That(r1.AuxLoss.item<float>(), Is.EqualTo(expected).Within(1e-6));
        Assert.That(r2.AuxLoss.item<float>(), Is.EqualTo(expected).Within(1e-6));
    }

    [Test]
    public void AuxLoss_UnbalancedHandExample()
    {
        using var scope = NewDisposeScope();
        // Two experts, four tokens; first choices 0, 0, 0, 1 => f = (3/4, 1/4).
        double[][] rows = { new[] { 2.0, 0.0 }, new[] { 1.0, 0.5 }, new[] { 0.2, 0.1 }, new[] { -1.0, 1.0 } };
        var logits = Logits(4, 2, rows.SelectMany(r => r.Select(v => (float)v)).ToArray());
        double p0 = rows.Average(r => Softmax(r)[0]), p1 = rows.Average(r => Softmax(r)[1]);
        double expected = 2 * (0.75 * p0 + 0.25 * p1);

        var r = MoeRouting.Route(logits, null, 1, 4, TokenPriority.Order);
        Assert.That(r.AuxLoss.item<float>(), Is.EqualTo(expected).Within(1e-6));
    }

    [Test]
    public void ZLoss_IsMeanSquaredLogSumExp()
    {
        using var scope = NewDisposeScope();
        double expected = Rows.Average(r => Math.Pow(LogSumExp(r), 2));
        var r = MoeRouting.Route(HandLogits(), null, 1, 3, TokenPriority.Order);
        Assert.That(r.ZLoss.item<float>(), Is.EqualTo(expected).Within(1e-5));
    }

    [Test]
    public void Order_DropsLaterTokensFirst()
    {
        using var scope = NewDisposeScope();
        var logits = Logits(6, 3, Enumerable.Range(0, 6).SelectMany(_ => new[] { 5f, 0f, 0f }).ToArray());
        var r = MoeRouting.Route(logits, null, 1, capacity: 4, TokenPriority.Order);

        Assert.That(Bools(r.Kept), Is.EqualTo(new[] { true, true, true, true, false, false }));
        Assert.That(Longs(r.Position), Is.EqualTo(new long[] { 0, 1, 2, 3, 4, 5 }));
        Assert.That(r.Dropped, Is.EqualTo(2));
        Assert.That(Longs(r.TokensPerExpert), Is.EqualTo(new long[] { 4, 0, 0 }));
    }

    [Test]
    public void Score_DropsLowestProbabilityFirst()
    {
        using var scope = NewDisposeScope();
        float[] a = { 1f, 3f, 2f, 0.5f, 4f };   // expert 0 logit; expert 1 logit is 0, so p0 rises with a
        var logits = Logits(5, 2, a.SelectMany(v => new[] { v, 0f }).ToArray());
        var r = MoeRouting.Route(logits, null, 1, capacity: 3, TokenPriority.Score);

        Assert.That(Bools(r.Kept), Is.EqualTo(new[] { false, true, true, false, true }));
        Assert.That(Longs(r.Position), Is.EqualTo(new long[] { 3, 1, 2, 4, 0 }));
        Assert.That(r.Dropped, Is.EqualTo(2));
    }

    [Test]
    public void Random_EveryPositionDroppedWithEqualFrequency()
    {
        const int s = 8, capacity = 3, trials = 2000;
        var dropped = new int[s];
        using var gen = new Generator(1234);
        var logits = Logits(s, 4, Enumerable.Range(0, s).SelectMany(_ => new[] { 3f, 0f, 1f, 0f }).ToArray());
        for (int trial = 0; trial < trials; trial++)
        {
            using var scope = NewDisposeScope();
            var r = MoeRouting.Route(logits, null, 1, capacity, TokenPriority.Random, gen);
            var kept = Bools(r.Kept);
            Assert.That(kept.Count(k => k), Is.EqualTo(capacity));
            for (int i = 0; i < s; i++) if (!kept[i]) dropped[i]++;
        }
        double p = (double)(s - capacity) / s;
        double se = Math.Sqrt(p * (1 - p) / trials);
        for (int i = 0; i < s; i++)
            Assert.That((double)dropped[i] / trials, Is.EqualTo(p).Within(3 * se), $"position {i}");
        logits.Dispose();
    }

    [Test]
    public void Random_SameSeedSameRouting()
    {
        using var scope = NewDisposeScope();
        var logits = Logits(6, 2, Enumerable.Range(0, 6).SelectMany(_ => new[] { 1f, 0f }).ToArray());
        using var g1 = new Generator(7);
        using var g2 = new Generator(7);
        var a = MoeRouting.Route(logits, null, 1, 2, TokenPriority.Random, g1);
        var b = MoeRouting.Route(logits, null, 1, 2, TokenPriority.Random, g2);
        Assert.That(Bools(a.Kept), Is.EqualTo(Bools(b.Kept)));
    }

    [Test]
    public void TokenMask_MaskedTokensNotRouted_TakeNoCapacity_ExcludedFromLosses()
    {
        using var scope = NewDisposeScope();
        // All four tokens prefer expert 0; tokens 0 and 1 are padding. Capacity 2 fits exactly the real ones.
        double[][] rows = { new[] { 3.0, 0.0 }, new[] { 2.0, 0.0 }, new[] { 1.0, 0.5 }, new[] { 2.5, 1.0 } };
        var logits = Logits(4, 2, rows.SelectMany(r => r.Select(v => (float)v)).ToArray());
        var mask = tensor(new[] { false, false, true, true });
        var r = MoeRouting.Route(logits, mask, 1, capacity: 2, TokenPriority.Order);

        Assert.That(Bools(r.Kept), Is.EqualTo(new[] { false, false, true, true }));
        Assert.That(Longs(r.Position), Is.EqualTo(new long[] { -1, -1, 0, 1 }));
        var gate = Floats(r.Gate);
        Assert.That(gate[0], Is.EqualTo(0f));
        Assert.That(gate[1], Is.EqualTo(0f));
        Assert.That(Longs(r.TokensPerExpert), Is.EqualTo(new long[] { 2, 0 }));
        Assert.That(r.RoutedTokens, Is.EqualTo(2));
        Assert.That(r.Dropped, Is.EqualTo(0));

        double[][] real = { rows[2], rows[3] };
        double aux = 2 * (1.0 * real.Average(x => Softmax(x)[0]) + 0.0);
        double z = real.Average(x => Math.Pow(LogSumExp(x), 2));
        Assert.That(r.AuxLoss.item<float>(), Is.EqualTo(aux).Within(1e-6));
        Assert.That(r.ZLoss.item<float>(), Is.EqualTo(z).Within(1e-5));
    }

    [Test]
    public void TokenMask_AllMasked_LossesZero()
    {
        using var scope = NewDisposeScope();
        var r = MoeRouting.Route(HandLogits(), zeros(3, ScalarType.Bool), 2, 3, TokenPriority.Order);
        Assert.That(Bools(r.Kept), Is.All.False);
        Assert.That(r.AuxLoss.item<float>(), Is.EqualTo(0f));
        Assert.That(r.ZLoss.item<float>(), Is.EqualTo(0f));
        Assert.That(r.RoutedTokens, Is.EqualTo(0));
        Assert.That(r.Dropped, Is.EqualTo(0));
    }

    [Test]
    public void FewerTokensThanExperts()
    {
        using var scope = NewDisposeScope();
        var logits = Logits(2, 8, new float[] { 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1 });
        long c = MoeRouting.Capacity(2, 8, 2, 1.0, 0);
        var r = MoeRouting.Route(logits, null, 2, c, TokenPriority.Order);
        Assert.That(c, Is.EqualTo(1));
        Assert.That(Longs(r.ExpertIndex), Is.EqualTo(new long[] { 3, 6, 0, 7 }));
        Assert.That(Bools(r.Kept), Is.All.True);
        Assert.That(r.TokensPerExpertCounts.Sum(), Is.EqualTo(4));
    }

    [Test]
    public void EmptyBatch_ReturnsEmptyResult()
    {
        using var scope = NewDisposeScope();
        var logits = zeros(0, 4).requires_grad_(true);
        var r = MoeRouting.Route(logits, null, 2, 0, TokenPriority.Random);
        Assert.That(r.ExpertIndex.shape, Is.EqualTo(new long[] { 0 }));
        Assert.That(r.Gate.shape, Is.EqualTo(new long[] { 0 }));
        Assert.That(r.AuxLoss.item<float>(), Is.EqualTo(0f));
        Assert.That(r.ZLoss.item<float>(), Is.EqualTo(0f));
        Assert.That(Longs(r.TokensPerExpert), Is.EqualTo(new long[4]));
        Assert.That(r.RoutedTokens, Is.EqualTo(0));
    }

    [Test]
    public void SecondChoiceGumbel_OffByDefault_OnChangesOnlySecondChoices()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var logits = randn(64, 8);
        var plain = MoeRouting.Route(logits, null, 2, 64, TokenPriority.Order);
        using var gen = new Generator(11);
        var noisy = MoeRouting.Route(logits, null, 2, 64, TokenPriority.Order, gen, secondChoiceGumbel: true);
        var a = Longs(plain.ExpertIndex);
        var b = Longs(noisy.ExpertIndex);
        Assert.That(b.Take(64), Is.EqualTo(a.Take(64)), "first choices are never noisy");
        Assert.That(b.Skip(64).Zip(b.Take(64)).All(p => p.First != p.Second), "second differs from first");
        Assert.That(b.Skip(64), Is.Not.EqualTo(a.Skip(64)), "Gumbel noise changes some second choices");
    }

    [Test]
    public void Gates_AreDifferentiableWrtLogits()
    {
        using var scope = NewDisposeScope();
        var logits = HandLogits().requires_grad_(true);
        var r = MoeRouting.Route(logits, null, 2, 3, TokenPriority.Order);
        (r.Gate.sum() + r.AuxLoss + r.ZLoss).backward();
        Assert.That(logits.grad, Is.Not.Null);
        Assert.That(logits.grad!.abs().sum().item<float>(), Is.GreaterThan(0f));
    }
}
