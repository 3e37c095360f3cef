using System.Text.Json;
using static ZCode.Tests.CliRunner;

namespace ZCode.Tests.Cli;

/// <summary>`zcode eval` and `zcode translate` end to end on a checkpoint of a one-step tiny run.</summary>
public class EvalCommandTests
{
    private string run = "";

    [OneTimeSetUp]
    public void TrainTinyCheckpoint()
    {
        run = Path.Combine(Path.GetTempPath(), "zcode-eval-" + Guid.NewGuid().ToString("N"));
        // Short outputs (at most 4 tokens) keep decoding of 2 x 100 sentences fast on any machine.
        var (code, _, err) = Run("train", "--set", "train.max_steps=1", "--set", "train.tokens_per_batch=512",
            "--set", "eval.max_len_a=0", "--set", "eval.max_len_b=4", "--output", run);
        Assert.That(code, Is.EqualTo(0), err);
    }

    [OneTimeTearDown]
    public void Remove()
    {
        if (Directory.Exists(run)) Directory.Delete(run, true);
    }

    [Test]
    public void EvalPrintsATableAndWritesHypothesesAndJson()
    {
        var outDir = Path.Combine(run, "eval");
        var json = Path.Combine(run, "scores.json");
        var (code, output, err) = Run("eval", "--task", "mt", "--checkpoint", run, "--pairs", "en-de,de-en", "--beam", "2",
            "--output-dir", outDir, "--json", json);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("direction").And.Contain("eng_Latn-deu_Latn").And.Contain("deu_Latn-eng_Latn").And.Contain("average"));
        Assert.That(err, Does.Contain("eval eng_Latn-deu_Latn"), "a progress line per direction when not on a terminal");
        var hyps = File.ReadAllLines(Path.Combine(outDir, "valid.eng_Latn-deu_Latn.hyp"));
        Assert.That(hyps, Has.Length.EqualTo(100), "every valid line is translated");
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var directions = doc.RootElement.GetProperty("directions");
        Assert.That(directions.GetArrayLength(), Is.EqualTo(2));
        Assert.That(directions[0].GetProperty("bleu").GetProperty("signature").GetString(), Does.StartWith("nrefs:1|case:mixed|eff:no|tok:13a"));
        Assert.That(directions[0].GetProperty("sentences").GetInt32(), Is.EqualTo(100));
        Assert.That(doc.RootElement.GetProperty("average").TryGetProperty("bleu", out _), Is.True);
    }

    [Test]
    public void EvalRejectsUnknownPairsAndSplits()
    {
        Assert.That(Run("eval", "--task", "mt", "--checkpoint", run, "--pairs", "de-fr").Code, Is.EqualTo(2));
        var (code, _, err) = Run("eval", "--task", "mt", "--checkpoint", run, "--split", "test");
        Assert.That(code, Is.EqualTo(2), "the default config has no data.test entries");
        Assert.That(err.Trim(), Does.Contain("no data.test entries").And.Contain("add test corpora under data.test"));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(Run("eval", "--task", "mt", "--checkpoint", run, "--split", "train").Code, Is.EqualTo(2));
        Assert.That(Run("eval", "--task", "dae", "--checkpoint", run).Code, Is.EqualTo(2));
    }

    [Test]
    public void TranslateKeepsOneOutputLinePerInputLineInOrder()
    {
        var stdin = Console.In;
        try
        {
            Console.SetIn(new StringReader("Hello world.\n\nThis is a somewhat longer sentence to translate.\nShort.\n"));
            var (code, output, err) = Run("translate", "--checkpoint", run, "--src", "en", "--tgt", "de", "--beam", "2", "--batch-size", "2");
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(output.Split('\n')[..^1], Has.Length.EqualTo(4));
        }
        finally
        {
            Console.SetIn(stdin);
        }
        Assert.That(Run("translate", "--checkpoint", run, "--src", "en", "--tgt", "xx").Code, Is.EqualTo(2));
    }
}

/// <summary>`zcode eval --split test` on a run whose config lists data.test, against `zcode translate` of the same text.</summary>
public class EvalTestSplitTests
{
    private string dir = "", run = "";
    private static readonly string[] English =
        ["Hello world.", "", string.Join(' ', Enumerable.Repeat("international", 30)), "Good morning.", "Thank you very much."];

    [OneTimeSetUp]
    public void TrainWithATestSplit()
    {
        dir = Path.Combine(Path.GetTempPath(), "zcode-eval-split-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var train = Path.Combine(CliRunner.RepoRoot, "data-samples", "ntrex128", "train");
        File.WriteAllLines(Path.Combine(dir, "train.en"), File.ReadLines(Path.Combine(train, "eng_Latn.txt")).Take(200));
        File.WriteAllLines(Path.Combine(dir, "train.de"), File.ReadLines(Path.Combine(train, "deu_Latn.txt")).Take(200));
        File.WriteAllLines(Path.Combine(dir, "test.en"), English);
        File.WriteAllLines(Path.Combine(dir, "test.de"), ["Hallo Welt.", "Leer.", "Lang.", "Guten Morgen.", "Vielen Dank."]);
        var config = Path.Combine(dir, "c.yaml");
        File.WriteAllText(config,
            $"data:\n  spm_model: {Path.Combine(CliRunner.RepoRoot, "data-samples", "spm.model")}\n  shard_dir: shards\n  max_len: 32\n" +
            "  parallel:\n    - {src: en, tgt: de, src_path: train.en, tgt_path: train.de}\n" +
            "  test:\n    - {src: en, tgt: de, src_path: test.en, tgt_path: test.de}\n");
        run = Path.Combine(dir, "run");
        var (code, _, err) = Run("train", "--config", config, "--set", "train.max_steps=1", "--set", "train.tokens_per_batch=512",
            "--set", "eval.max_len_a=0", "--set", "eval.max_len_b=4", "--output", run);
        Assert.That(code, Is.EqualTo(0), err);
    }

    [OneTimeTearDown]
    public void Remove()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }

    [Test]
    public void TestSplitTranslatesEveryLineAsTranslateDoes()
    {
        var outDir = Path.Combine(dir, "eval");
        var (code, output, err) = Run("eval", "--task", "mt", "--checkpoint", run, "--split", "test", "--beam", "2", "--output-dir", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("eng_Latn-deu_Latn").And.Contain("deu_Latn-eng_Latn"));
        Assert.That(err, Does.Contain("data: shards up to date"), "train prepared them; eval checks them as train does");
        var hyps = File.ReadAllLines(Path.Combine(outDir, "test.eng_Latn-deu_Latn.hyp"));
        Assert.That(hyps, Has.Length.EqualTo(English.Length), "the empty and the over-long line are translated too");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "scores.json")));
        Assert.That(doc.RootElement.GetProperty("split").GetString(), Is.EqualTo("test"));
        Assert.That(doc.RootElement.GetProperty("directions")[0].GetProperty("sentences").GetInt32(), Is.EqualTo(English.Length));

        // The same model inputs from text: zcode translate gives the same lines.
        var stdin = Console.In;
        try
        {
            Console.SetIn(new StringReader(string.Join('\n', English) + "\n"));
            var (tcode, translated, terr) = Run("translate", "--checkpoint", run, "--src", "en", "--tgt", "de", "--beam", "2");
            Assert.That(tcode, Is.EqualTo(0), terr);
            Assert.That(translated.Split('\n')[..^1], Is.EqualTo(hyps));
        }
        finally
        {
            Console.SetIn(stdin);
        }
    }
}
