using System.Text.Json;
using static ZCode.Tests.CliRunner;

namespace ZCode.Tests.Cli;

/// <summary>`zcode score`: sacreBLEU's output lines and numbers, JSON keys, multiple references, aligned-files check.</summary>
public class ScoreCommandTests
{
    private string dir = "";

    [SetUp]
    public void SetUp()
    {
        dir = Path.Combine(Path.GetTempPath(), "zcode-score-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        // mjpost/sacrebleu test/test_bleu.py: _hyps and _refs (corpus BLEU 48.530827 with default settings).
        File.WriteAllText(Path.Combine(dir, "hyp"), "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n");
        File.WriteAllText(Path.Combine(dir, "ref1"), "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n");
        File.WriteAllText(Path.Combine(dir, "ref2"), "The dog had bit the man.\r\nNo one was surprised.\r\nThe man had bitten the dog.");
        File.WriteAllText(Path.Combine(dir, "short"), "one line\n");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(dir, true);

    [Test]
    public void TextOutputIsSacreBleusLineWithSignature()
    {
        var (code, output, _) = Run("score", "--hyp", P("hyp"), "--ref", P("ref1"), "--ref", P("ref2"));
        Assert.That(code, Is.EqualTo(0));
        var lines = output.Trim().Split('\n');
        Assert.That(lines[0], Does.StartWith("BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 48.5 "));
        Assert.That(lines[1], Does.StartWith("chrF2|nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = "));
    }

    [Test]
    public void JsonHasTheDocumentedKeys()
    {
        var (code, output, _) = Run("score", "--hyp", P("hyp"), "--ref", P("ref1"), "--ref", P("ref2"), "--json", "--tokenize", "intl");
        Assert.That(code, Is.EqualTo(0));
        using var doc = JsonDocument.Parse(output);
        var bleu = doc.RootElement.GetProperty("bleu");
        Assert.That(bleu.GetProperty("score").GetDouble(), Is.EqualTo(43.91623493).Within(1e-6)); // test_corpus_bleu intl
        foreach (var key in new[] { "counts", "totals", "precisions", "bp", "sys_len", "ref_len", "signature" })
            Assert.That(bleu.TryGetProperty(key, out _), Is.True, key);
        Assert.That(bleu.GetProperty("signature").GetString(), Does.Contain("tok:intl"));
        var chrf = doc.RootElement.GetProperty("chrf");
        Assert.That(chrf.TryGetProperty("score", out _) && chrf.TryGetProperty("signature", out _), Is.True);
    }

    [Test]
    public void MismatchedLineCountsExitWithTwoNamingBothFiles()
    {
        var (code, _, err) = Run("score", "--hyp", P("hyp"), "--ref", P("short"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain(P("hyp")).And.Contain(P("short")));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
    }

    [Test]
    public void MissingFileAndBadMetricAreBadInput()
    {
        Assert.That(Run("score", "--hyp", P("nope"), "--ref", P("ref1")).Code, Is.EqualTo(2));
        Assert.That(Run("score", "--hyp", P("hyp"), "--ref", P("ref1"), "--metrics", "ter").Code, Is.EqualTo(2));
    }

    [Test]
    public void SentenceLevelPrintsOneLinePerSentenceWithEffectiveOrder()
    {
        var (code, output, _) = Run("score", "--hyp", P("hyp"), "--ref", P("ref1"), "--metrics", "bleu", "--sentence-level");
        Assert.That(code, Is.EqualTo(0));
        var lines = output.Trim().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(3));
        Assert.That(lines[0], Does.Contain("eff:yes").And.Contain("= 100.0"));
    }

    private string P(string name) => Path.Combine(dir, name);
}
