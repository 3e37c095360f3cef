using ZCode.Config;
using ZCode.Data;
using ZCode.Data.Shards;
using ZCode.Evaluation;
using ZCode.Tests.Data;

namespace ZCode.Tests.Evaluation;

/// <summary>What `zcode eval` feeds the model: every line of the split's files from the shards, in the MT layout that
/// training and `zcode translate` use.</summary>
public class EvalInputsTests
{
    private static ZCode.Text.SpmTokenizer Tok => DataTestPaths.Tokenizer;

    private static ZCodeConfig Config(string dir, string dataYaml)
        => ConfigLoader.LoadText($"data:\n  spm_model: {DataTestPaths.SpmModel}\n  shard_dir: shards\n{dataYaml}",
            Path.Combine(dir, "c.yaml"), baseDirectory: dir);

    private static string Entry(string src, string tgt) => $"    - {{src: en, tgt: de, src_path: {src}, tgt_path: {tgt}}}\n";

    private static readonly string Long = string.Join(' ', Enumerable.Repeat("international", 30));

    /// <summary>Lines data prepare filters out of training (empty, blank, longer than max_len 16) between kept ones.</summary>
    private static readonly string[] English = ["Hello world.", "", Long, "   ", "Good morning.", "Grüße, 世界 😀!"];
    private static readonly string[] German = ["Hallo Welt.", "Leer.", "Lang.", "\t", "Guten Morgen.", Long];

    [TestCase("valid")]
    [TestCase("test")]
    public void EvalReadsEveryLineOfTheSplitInOrder(string split)
    {
        using var tmp = DataTestPaths.NewTempDir();
        var en = tmp.Write("x.en", string.Join('\n', English) + "\n");
        var de = tmp.Write("x.de", string.Join('\n', German) + "\n");
        var cfg = Config(tmp.Path, $"  max_len: 16\n  {split}:\n" + Entry(en, de));
        var prepared = DataPreparer.Prepare(cfg);
        var corpus = prepared.Index.Corpora.Single();
        Assert.That((corpus.Section, corpus.Lines, corpus.Kept), Is.EqualTo((split, 6L, 2L)), "the keep list drops 4 lines");

        var directions = MtEvaluation.Directions(cfg, split, null);
        Assert.That(directions.Select(d => d.Name), Is.EqualTo(new[] { "eng_Latn-deu_Latn", "deu_Latn-eng_Latn" }));
        foreach (var d in directions)
        {
            var (srcLines, refLines) = d.Src == "eng_Latn" ? (English, German) : (German, English);
            var inputs = MtEvaluation.ReadInputs(prepared, d, Tok);
            Assert.That(inputs.References, Is.EqualTo(refLines), $"{d.Name}: the raw reference text, every line, in order");
            Assert.That(inputs.Sources, Has.Count.EqualTo(srcLines.Length), d.Name);
            var tag = Tok.LanguageTagId(d.Tgt);
            for (var i = 0; i < srcLines.Length; i++)
                Assert.That(inputs.Sources[i], Is.EqualTo(Translator.Source(Tok, srcLines[i], tag)), $"{d.Name} line {i + 1}");
            if (d.Src == "eng_Latn") Assert.That(inputs.Sources[1], Is.EqualTo(new[] { tag, Tok.EosId }), "the empty line is there");
            Assert.That(inputs.Sources.Max(s => s.Length), Is.GreaterThan(16), "the over-long line is not skipped");
        }
    }

    [Test]
    public void TranslatorAndShardSetsBuildIdenticalSources()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var valid = Path.Combine(DataTestPaths.DataSamples, "ntrex128", "valid");
        var english = File.ReadLines(Path.Combine(valid, "eng_Latn.txt")).Take(20).Append("Grüße, 世界 😀!").ToArray();
        var german = File.ReadLines(Path.Combine(valid, "deu_Latn.txt")).Take(20).Append("Grüße, Welt!").ToArray();
        var en = tmp.Write("x.en", string.Join('\n', english) + "\n");
        var de = tmp.Write("x.de", string.Join('\n', german) + "\n");
        var cfg = Config(tmp.Path, "  parallel:\n" + Entry(en, de) + "  valid:\n" + Entry(en, de));
        var prepared = DataPreparer.Prepare(cfg);
        var data = DataSource.FromPrepared(cfg, prepared);
        Assert.That(data.TrainSets.Select(s => s.Count), Is.All.EqualTo(english.Length), "every line is kept, so example i is line i");

        foreach (var (sets, what) in new[] { (data.TrainSets, "train"), (data.ValidSets, "valid") })
            foreach (var set in sets)
            {
                var lines = set.SrcLang == "eng_Latn" ? english : german;
                var tag = Tok.LanguageTagId(set.TgtLang);
                for (var i = 0; i < lines.Length; i++)
                    Assert.That(set.Get(i).Source, Is.EqualTo(Translator.Source(Tok, lines[i], tag)), $"{what} {set.Name} line {i + 1}");
            }
        var forward = MtEvaluation.Directions(cfg, "valid", "en-de").Single();
        Assert.That(MtEvaluation.ReadInputs(prepared, forward, Tok).Sources,
            Is.EqualTo(Enumerable.Range(0, english.Length).Select(i => data.ValidSets[0].Get(i).Source)));
    }

    [Test]
    public void OnTheSampleValidFilesTheShardsGiveWhatReadingTheTextGives()
    {
        // Eval used to read both files as text (TextLines, as sacreBLEU reads them) and encode the sources itself.
        var cfg = ConfigLoader.LoadDefault([]);
        var prepared = DataPreparer.Prepare(cfg);
        var directions = MtEvaluation.Directions(cfg, "valid", null);
        Assert.That(directions, Has.Count.EqualTo(18));
        foreach (var d in directions)
        {
            var inputs = MtEvaluation.ReadInputs(prepared, d, Tok);
            var tag = Tok.LanguageTagId(d.Tgt);
            Assert.That(inputs.Sources, Is.EqualTo(TextLines.Read(d.SrcPath).Select(l => Translator.Source(Tok, l, tag))), d.Name);
            Assert.That(inputs.References, Is.EqualTo(TextLines.Read(d.TgtPath)), d.Name);
        }
    }

    [Test]
    public void TestSplitWithoutEntriesSaysHowToAddThem()
    {
        var cfg = ConfigLoader.LoadDefault([]);
        var e = Assert.Throws<UserInputException>(() => MtEvaluation.Directions(cfg, "test", null))!;
        Assert.That(e.Message, Does.StartWith("--split test: the checkpoint's config has no data.test entries")
            .And.Contain("add test corpora under data.test"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }
}
