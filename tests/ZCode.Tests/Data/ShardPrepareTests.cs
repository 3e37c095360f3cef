using System.IO.Compression;
using System.Text;
using ZCode.Config;
using ZCode.Data;
using ZCode.Data.Shards;

namespace ZCode.Tests.Data;

/// <summary>`zcode data prepare` internals: shard format, counts, up-to-date detection, bad input.</summary>
public class ShardPrepareTests
{
    private static ZCodeConfig Config(string dir, string dataYaml, string tasks = "")
        => ConfigLoader.LoadText($"data:\n  spm_model: {DataTestPaths.SpmModel}\n  shard_dir: shards\n{dataYaml}{tasks}",
            Path.Combine(dir, "test.yaml"), baseDirectory: dir);

    private static string Sample(string lang) => Path.Combine(DataTestPaths.DataSamples, "ntrex128", "train", lang + ".txt");

    [TestCase(2)]
    [TestCase(4)]
    public void ShardRoundTripsIds(int width)
    {
        using var tmp = DataTestPaths.NewTempDir();
        var lines = new[] { new[] { 5, 65535, 7 }, Array.Empty<int>(), new[] { 1 } };
        if (width == 4) lines[0][1] = 1_000_000;
        using (var w = new TokenShardWriter(Path.Combine(tmp.Path, "s"), width))
            foreach (var l in lines) w.Append(l);
        using var shard = new TokenShard(Path.Combine(tmp.Path, "s"), width);
        Assert.That(shard.Lines, Is.EqualTo(3));
        for (var i = 0; i < lines.Length; i++) Assert.That(shard.Get(i), Is.EqualTo(lines[i]));
        Assert.That(new FileInfo(Path.Combine(tmp.Path, "s.idx")).Length, Is.EqualTo(4 * 8));
        Assert.That(new FileInfo(Path.Combine(tmp.Path, "s.ids")).Length, Is.EqualTo(4 * width));
    }

    [Test]
    public void PrepareWritesShardsEqualToTheTokenizerAndSkipsUnchangedInputs()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var de = tmp.Write("de.txt", string.Join('\n', File.ReadLines(Sample("deu_Latn")).Take(50)) + "\n");
        var en = tmp.Write("en.txt", string.Join('\n', File.ReadLines(Sample("eng_Latn")).Take(50)) + "\n");
        var cfg = Config(tmp.Path, $"  parallel:\n    - {{src: en, tgt: de, src_path: {en}, tgt_path: {de}}}\n" +
                                   $"  monolingual:\n    - {{lang: deu_Latn, path: {de}}}\n");
        var first = DataPreparer.Prepare(cfg);
        Assert.That(first.UpToDate, Is.False);
        var index = first.Index;
        Assert.That(index.Files, Has.Count.EqualTo(2), "de.txt is used twice but tokenized once");
        Assert.That(index.IdWidth, Is.EqualTo(2));
        Assert.That(index.Corpora.Select(c => c.Section), Is.EqualTo(new[] { "parallel", "monolingual" }));
        Assert.That(index.ByPair["eng_Latn-deu_Latn"].Sentences, Is.EqualTo(index.Corpora[0].Kept));

        var tok = DataTestPaths.Tokenizer;
        using (var shard = new TokenShard(Path.Combine(tmp.Path, "shards", index.Files[0].Shard), 2))
        {
            var expected = File.ReadLines(en).Select(tok.Encode).ToArray();
            Assert.That(shard.Lines, Is.EqualTo(expected.Length));
            for (var i = 0; i < expected.Length; i++) Assert.That(shard.Get(i), Is.EqualTo(expected[i]), $"line {i + 1}");
        }

        Assert.That(DataPreparer.Prepare(cfg).UpToDate, Is.True);
        Assert.That(DataPreparer.IsUpToDate(cfg), Is.True);
        File.AppendAllText(de, "Noch ein Satz.\n");
        File.AppendAllText(en, "One more sentence.\n");
        Assert.That(DataPreparer.IsUpToDate(cfg), Is.False, "content changed");
        Assert.That(DataPreparer.Prepare(cfg).Index.Files[0].Lines, Is.EqualTo(51));
        var cfg2 = Config(tmp.Path, $"  max_len: 64\n  parallel:\n    - {{src: en, tgt: de, src_path: {en}, tgt_path: {de}}}\n" +
                                    $"  monolingual:\n    - {{lang: deu_Latn, path: {de}}}\n");
        Assert.That(DataPreparer.Prepare(cfg2).UpToDate, Is.False, "max_len changed");
    }

    [Test]
    public void TestCorporaArePreparedLikeValidButNeverTrainedOn()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var en = tmp.Write("en.txt", string.Join('\n', File.ReadLines(Sample("eng_Latn")).Take(30)) + "\n");
        var de = tmp.Write("de.txt", string.Join('\n', File.ReadLines(Sample("deu_Latn")).Take(30)) + "\n");
        var ten = tmp.Write("test.en", "Hello.\n\nGood morning.\n");
        var tde = tmp.Write("test.de", "Hallo.\nLeer.\nGuten Morgen.\n");
        var baseYaml = $"  parallel:\n    - {{src: en, tgt: de, src_path: {en}, tgt_path: {de}}}\n" +
                       $"  valid:\n    - {{src: en, tgt: de, src_path: {en}, tgt_path: {de}}}\n";
        var withTest = Config(tmp.Path, baseYaml + $"  test:\n    - {{src: en, tgt: de, src_path: {ten}, tgt_path: {tde}}}\n");

        var without = DataPreparer.Prepare(Config(tmp.Path, baseYaml));
        var plain = DataSource.FromPrepared(Config(tmp.Path, baseYaml), without);
        // Read before the shards are rewritten under the mapping.
        var (trainSets, validSets) = (plain.TrainSets.Select(s => (s.Name, s.Count)).ToList(), plain.ValidSets.Select(s => (s.Name, s.Count)).ToList());
        Assert.That(DataPreparer.IsUpToDate(withTest), Is.False, "data.test is part of the fingerprint");
        var prepared = DataPreparer.Prepare(withTest);
        Assert.That(prepared.UpToDate, Is.False);
        var test = prepared.Index.Corpora.Single(c => c.Section == "test");
        Assert.That((test.Key, test.Lines, test.Kept, test.SkippedEmpty), Is.EqualTo(("data.test[0]", 3L, 2L, 1L)));
        Assert.That(prepared.Index.ByLanguage["eng_Latn"].Sentences, Is.EqualTo(without.Index.ByLanguage["eng_Latn"].Sentences),
            "the per-language training counts leave test out");
        var data = DataSource.FromPrepared(withTest, prepared);
        Assert.That(data.TrainSets.Select(s => (s.Name, s.Count)), Is.EqualTo(trainSets));
        Assert.That(data.ValidSets.Select(s => (s.Name, s.Count)), Is.EqualTo(validSets));

        // An empty data.test is the config without it: the shards of such a config stay up to date.
        var emptyTest = Config(tmp.Path, baseYaml + "  test: []\n");
        Assert.That(DataPreparer.Prepare(emptyTest).Index.Fingerprint, Is.EqualTo(without.Index.Fingerprint));
        Assert.That(DataPreparer.IsUpToDate(Config(tmp.Path, baseYaml)), Is.True);
    }

    [Test]
    public void EmptyAndTooLongLinesAreSkippedAndCounted_GzipIsRead()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var longLine = string.Join(' ', Enumerable.Repeat("Haus", 40));
        var en = tmp.Write("en.txt", "Hello.\n\nA house.\n" + string.Join(' ', Enumerable.Repeat("house", 40)) + "\nGood.\n");
        var gz = Path.Combine(tmp.Path, "de.txt.gz");
        using (var f = File.Create(gz))
        using (var z = new GZipStream(f, CompressionLevel.Fastest))
            z.Write(Encoding.UTF8.GetBytes("Hallo.\nLeer?\n \n" + longLine + "\nGut.\n"));
        var cfg = Config(tmp.Path, $"  max_len: 16\n  parallel:\n    - {{src: en, tgt: de, src_path: {en}, tgt_path: {gz}}}\n");
        var c = DataPreparer.Prepare(cfg).Index.Corpora[0];
        Assert.That((c.Lines, c.Kept, c.SkippedEmpty, c.SkippedTooLong), Is.EqualTo((5L, 2L, 2L, 1L)));
    }

    [Test]
    public void ParallelFilesWithDifferentLineCountsNameTheFileAndLine()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var en = tmp.Write("en.txt", "a\nb\nc\n");
        var de = tmp.Write("de.txt", "a\nb\n");
        var cfg = Config(tmp.Path, $"  parallel:\n    - {{src: en, tgt: de, src_path: {en}, tgt_path: {de}}}\n");
        var e = Assert.Throws<UserInputException>(() => DataPreparer.Prepare(cfg))!;
        Assert.That(e.Message, Does.StartWith($"{en}:3:1:"));
        Assert.That(e.Message, Does.Contain("same number of lines").And.Contain(de));
        Assert.That(File.Exists(Path.Combine(tmp.Path, "shards", "index.json")), Is.False, "no index after a failure");
    }

    [Test]
    public void InvalidUtf8NamesTheFileAndLine()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var en = tmp.Write("en.txt", "a\nb\n");
        var de = tmp.WriteBytes("de.txt", [(byte)'o', (byte)'k', (byte)'\n', (byte)'x', 0xC3, 0x28, (byte)'\n']);
        var cfg = Config(tmp.Path, $"  parallel:\n    - {{src: en, tgt: de, src_path: {en}, tgt_path: {de}}}\n");
        var e = Assert.Throws<UserInputException>(() => DataPreparer.Prepare(cfg))!;
        Assert.That(e.Message, Does.StartWith($"{de}:2:2: invalid UTF-8"));
    }

    [Test]
    public void MissingAndUnreadableFilesAreNamed()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var en = tmp.Write("en.txt", "a\n");
        var missing = Path.Combine(tmp.Path, "nope.txt");
        // A missing file is a config error, found by the validator `data prepare` runs first, at the item's path line.
        var e = Assert.Throws<UserInputException>(() => ConfigValidator.ValidateRun(
            Config(tmp.Path, $"  monolingual:\n    - {{lang: en, path: {missing}}}\n"), RunChecks.Data))!;
        Assert.That(e.Message, Does.StartWith(Path.Combine(tmp.Path, "test.yaml") + ":5:24: ")
            .And.Contain($"data.monolingual[0].path: {missing}: no such file"));

        // An unreadable file is found reading it.
        var badGz = tmp.Write("bad.txt.gz", "this is not gzip data\n");
        e = Assert.Throws<UserInputException>(() => DataPreparer.Prepare(
            Config(tmp.Path, $"  monolingual:\n    - {{lang: en, path: {badGz}}}\n")))!;
        Assert.That(e.Message, Does.StartWith(badGz).And.Contain("cannot read"));
        _ = en;
    }

    [Test]
    public void UnknownLanguageSuggestsACode()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var en = tmp.Write("en.txt", "a\n");
        var e = Assert.Throws<UserInputException>(() => ConfigValidator.ValidateRun(
            Config(tmp.Path, $"  monolingual:\n    - {{lang: eng_Latm, path: {en}}}\n"), RunChecks.Data))!;
        Assert.That(e.Message, Does.Contain(": data.monolingual[0].lang: unknown language 'eng_Latm'; did you mean 'eng_Latn'?"));
    }

    [Test]
    public void DataPrepareCommandReportsThenFindsNothingToDo_BadInputExits2()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var en = tmp.Write("en.txt", "Hello.\nGood morning.\n");
        var de = tmp.Write("de.txt", "Hallo.\nGuten Morgen.\n");
        var yaml = tmp.Write("c.yaml", $"data:\n  spm_model: {DataTestPaths.SpmModel}\n  shard_dir: shards\n" +
                                       $"  parallel:\n    - {{src: en, tgt: de, src_path: en.txt, tgt_path: de.txt}}\n");
        (int, string, string) Run()
        {
            var o = new StringWriter();
            var e = new StringWriter();
            return (ZCode.Cli.CliApp.Run(["data", "prepare", "--config", yaml], o, e), o.ToString(), e.ToString());
        }
        var (code, output, err) = Run();
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("data.parallel[0] eng_Latn-deu_Latn: 2 of 2 lines kept").And.Contain("uint16"));
        (code, output, _) = Run();
        Assert.That(output, Does.Contain("up to date"));

        File.WriteAllText(de, "Hallo.\n");
        (code, _, err) = Run();
        Assert.That(code, Is.EqualTo(ZCode.Cli.CliApp.ExitBadInput));
        Assert.That(err.Trim(), Does.StartWith($"{en}:2:1:").And.Contain("same number of lines"));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
    }
}
