using ZCode.Config;
using ZCode.Evaluation;

namespace ZCode.Tests.Evaluation;

/// <summary>The decode + score path of `zcode eval`, on the toy copy model and on the default config's directions.</summary>
public class EvalPathTests
{
    [Test]
    public void CopyModelScoresAboveNinetyFiveBleuThroughTheEvalPath()
    {
        var model = CopyModel.Trained;
        var symbols = CopyModel.Sequences(new Random(21), 200);
        // Text stands in for SentencePiece: a symbol id is the word "w<id>", so BLEU sees real words.
        var sources = symbols.Select(s => string.Join(' ', s.Select(id => $"w{id}"))).ToList();
        var ids = sources.Select(l => CopyModel.Source(l.Split(' ').Select(w => int.Parse(w[1..])).ToArray())).ToList();
        var hyps = BatchedDecoder.Decode(model, ids, CopyModel.Bos, CopyModel.Eos, new BeamSearchOptions { Beam = 4 }, 32);
        var texts = hyps.Select(h => string.Join(' ', h.Tokens.Select(id => $"w{id}"))).ToList();
        var scores = CorpusScorer.Score(texts, [sources], new ScoringOptions());
        TestContext.Out.WriteLine($"copy model: BLEU {scores.Bleu!.Score:F2}, chrF {scores.Chrf!.Score:F2}");
        Assert.That(scores.Bleu.Score, Is.GreaterThan(95));
        Assert.That(texts, Has.Count.EqualTo(200));
    }

    [Test]
    public void DefaultConfigHasEighteenValidDirectionsAndPairsFilter()
    {
        var cfg = ConfigLoader.LoadDefault([]);
        var all = MtEvaluation.Directions(cfg, "valid", null);
        Assert.That(all, Has.Count.EqualTo(18));
        Assert.That(all[0].Name, Is.EqualTo("eng_Latn-deu_Latn"));
        Assert.That(all[1].Name, Is.EqualTo("deu_Latn-eng_Latn"));
        Assert.That(all.All(d => File.Exists(d.SrcPath) && File.Exists(d.TgtPath)));
        var some = MtEvaluation.Directions(cfg, "valid", "en-de, zho_Hans-eng_Latn");
        Assert.That(some.Select(d => d.Name), Is.EqualTo(new[] { "eng_Latn-deu_Latn", "zho_Hans-eng_Latn" }));
        Assert.Throws<UserInputException>(() => MtEvaluation.Directions(cfg, "valid", "de-fr"));
        Assert.Throws<UserInputException>(() => MtEvaluation.Directions(cfg, "valid", "english"));
        Assert.Throws<UserInputException>(() => MtEvaluation.Directions(cfg, "test", null));
    }

    [Test]
    public void TextLinesSplitLikePython()
    {
        Assert.That(TextLines.Split("a\nb\r\nc\rd\n"), Is.EqualTo(new[] { "a", "b", "c", "d" }));
        Assert.That(TextLines.Split("a\n\nb"), Is.EqualTo(new[] { "a", "", "b" }));
        Assert.That(TextLines.Split(""), Is.Empty);
    }
}
