using TorchSharp;
using ZCode.Data;
using ZCode.Model.Moe;
using ZCode.Training;
using static TorchSharp.torch;
using static ZCode.Tests.Moe.MoeTestUtil;

namespace ZCode.Tests.Moe;

[TestFixture]
public class RoutingStatisticsTests
{
    private static Batch TwoRows(string langA, string langB) => Batch.Collate(new[]
    {
        new Example(new[] { 5, 6, 7, 2 }, new[] { 8, 2 }, "eng_Latn", langA, Tasks.Mt),
        new Example(new[] { 5, 6, 2 }, new[] { 8, 9, 2 }, "eng_Latn", langB, Tasks.Mt),
    }, padId: 0, bosId: 1);

    [Test]
    public void UsageByLanguage_CountsRealTokensOfEachRow_PerLayer()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        using var layer = new MoeLayer("moe", 6, 8, Cfg(3, 2, cf: 0.0));
        layer.train();
        var batch = TwoRows("deu_Latn", "fra_Latn");
        var x = randn(2, 4, 6);
        var mask = tensor(new[] { true, true, true, true, true, true, true, false }).view(2, 4);   // row 1 has a pad
        layer.forward(x, mask);

        var stats = new RoutingStatistics();
        stats.Add(new[] { layer, layer }, batch);   // the same layer twice: two identical "layers"
        var usage = stats.ExpertUsageByLanguage();
        Assert.That(usage.Keys, Is.EqualTo(new[] { "deu_Latn", "fra_Latn" }));

        // By hand from the routing: slot token t -> row t / 4; padding (token 7) is not counted.
        var experts = Longs(layer.LastRouting!.ExpertIndex);
        var tokens = Longs(layer.LastRouting!.TokenIndex);
        var counts = new double[2, 3];
        for (int i = 0; i < experts.Length; i++)
            if (tokens[i] != 7) counts[tokens[i] / 4, experts[i]]++;
        double[] Row(int r) { double n = counts[r, 0] + counts[r, 1] + counts[r, 2]; return new[] { counts[r, 0] / n, counts[r, 1] / n, counts[r, 2] / n }; }
        Assert.That(counts[0, 0] + counts[0, 1] + counts[0, 2], Is.EqualTo(8), "4 tokens x top-2");
        Assert.That(counts[1, 0] + counts[1, 1] + counts[1, 2], Is.EqualTo(6), "3 real tokens x top-2");
        for (int l = 0; l < 2; l++)
        {
            Assert.That(usage["deu_Latn"][l], Is.EqualTo(Row(0)).Within(1e-12));
            Assert.That(usage["fra_Latn"][l], Is.EqualTo(Row(1)).Within(1e-12));
        }

        // Imbalance over both rows (all languages): max / mean of the routed counts per expert.
        var perExpert = new[] { counts[0, 0] + counts[1, 0], counts[0, 1] + counts[1, 1], counts[0, 2] + counts[1, 2] };
        double imbalance = perExpert.Max() / perExpert.Average();
        Assert.That(stats.LoadImbalance(), Is.EqualTo(new[] { imbalance, imbalance }).Within(1e-12));

        stats.Reset();
        Assert.That(stats.ExpertUsageByLanguage(), Is.Empty);
        Assert.That(stats.LoadImbalance(), Is.Empty);
    }

    [Test]
    public void RouterEntropy_UniformRouterIsLnE_AveragedOverForwards()
    {
        using var scope = NewDisposeScope();
        using var layer = new MoeLayer("moe", 6, 8, Cfg(4, 1, cf: 0.0));
        using (no_grad()) layer.Router.weight!.zero_();
        layer.train();
        var batch = TwoRows("deu_Latn", "deu_Latn");
        var stats = new RoutingStatistics();
        layer.forward(randn(2, 4, 6), null);
        stats.Add(new[] { layer }, batch);
        layer.forward(randn(2, 4, 6), null);
        stats.Add(new[] { layer }, batch);
        Assert.That(stats.RouterEntropy()[0], Is.EqualTo(Math.Log(4)).Within(1e-6));
        Assert.That(stats.ExpertUsageByLanguage()["deu_Latn"][0], Is.EqualTo(new[] { 1.0, 0, 0, 0 }), "equal logits: argmax 0");
    }

    [Test]
    public void SummedByName_EqualsOneObjectThatSawEveryForward()
    {
        // Two "ranks" see different forwards (and meet the languages in a different order, so their device-side
        // language indices differ); summing their packed statistics must give what one object seeing both gives.
        using var scope = NewDisposeScope();
        manual_seed(5);
        using var layer = new MoeLayer("moe", 6, 8, Cfg(3, 2, cf: 0.0));
        layer.train();
        var batchA = TwoRows("deu_Latn", "fra_Latn");
        var batchB = TwoRows("fra_Latn", "fra_Latn");
        var rankA = new RoutingStatistics();
        var rankB = new RoutingStatistics();
        var single = new RoutingStatistics();
        layer.forward(randn(2, 4, 6), null);
        rankA.Add(new[] { layer, layer }, batchA);
        single.Add(new[] { layer, layer }, batchA);
        layer.forward(randn(2, 4, 6), null);
        rankB.Add(new[] { layer, layer }, batchB);
        single.Add(new[] { layer, layer }, batchB);

        var layers = new[] { layer, layer };
        var langs = new SortedSet<string>(StringComparer.Ordinal) { "deu_Latn", "fra_Latn" };
        var a = new NamedSums();
        var b = new NamedSums();
        rankA.AddTo(a, layers, langs);
        rankB.AddTo(b, layers, langs);
        Assert.That(a.Names, Is.EqualTo(b.Names), "every rank adds the same names");
        foreach (var name in b.Names) a.Add(name, b[name]);
        rankA.TakeFrom(a, layers, langs);

        Assert.That(rankA.RouterEntropy(), Is.EqualTo(single.RouterEntropy()).Within(1e-6));
        Assert.That(rankA.LoadImbalance(), Is.EqualTo(single.LoadImbalance()).Within(1e-12));
        var merged = rankA.ExpertUsageByLanguage();
        var expected = single.ExpertUsageByLanguage();
        Assert.That(merged.Keys, Is.EqualTo(expected.Keys));
        foreach (var lang in expected.Keys)
            for (int l = 0; l < 2; l++)
                Assert.That(merged[lang][l], Is.EqualTo(expected[lang][l]).Within(1e-12));

        rankA.Reset();
        Assert.That(rankA.ExpertUsageByLanguage(), Is.Empty, "Reset drops the reduced statistics too");
    }
}
