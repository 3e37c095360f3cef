using TorchSharp;
using ZCode.Data;
using ZCode.Training;

namespace ZCode.Tests.Data;

/// <summary>Per-task loss and per-language token counts for metrics.jsonl.</summary>
public class TaskMetricsTests
{
    [Test]
    public void MixedBatchSplitsTheNllByTaskAndCountsTokensByLanguage()
    {
        var examples = new[]
        {
            new Example([10, 11, 3], [12, 3], "eng_Latn", "deu_Latn", Tasks.Mt),
            new Example([55, 20, 56, 3], [21, 22, 23, 3], "fra_Latn", "fra_Latn", Tasks.Dae),
        };
        var batch = Batch.Collate(examples, 0, 2);
        torch.manual_seed(1);
        var logits = torch.randn(2, batch.TgtLen, 30);
        var tgtOut = torch.tensor(batch.TgtOut, new long[] { 2, batch.TgtLen });
        var (_, nll) = Losses.LabelSmoothedCrossEntropy(logits, tgtOut, 0, 0.1);
        var m = new TaskMetrics();
        m.Add(batch, logits, tgtOut, 0, nll.item<float>());
        var loss = m.LossByTask;
        Assert.That(loss.Keys, Is.EquivalentTo(new[] { "mt", "dae" }));
        Assert.That(loss["mt"] * 2 + loss["dae"] * 4, Is.EqualTo(nll.item<float>()).Within(1e-3), "task sums add up to the batch NLL");
        Assert.That(m.TokensByLang["eng_Latn"], Is.EqualTo(3));
        Assert.That(m.TokensByLang["deu_Latn"], Is.EqualTo(2));
        Assert.That(m.TokensByLang["fra_Latn"], Is.EqualTo(8));

        var single = new TaskMetrics();
        single.Add(Batch.Collate([examples[0]], 0, 2), logits, tgtOut, 0, 5.0);
        Assert.That(single.LossByTask["mt"], Is.EqualTo(2.5), "one-task batch reuses the batch NLL");
    }
}
