using System.Text;
using ZCode.Config;
using ZCode.Data;
using ZCode.Data.Shards;

namespace ZCode.Tests.Data;

/// <summary>Reading text and configured corpora: the line reader, and corpora as data prepare shards them.</summary>
public class CorpusTests
{
    private static ZCode.Text.SpmTokenizer Tok => DataTestPaths.Tokenizer;

    /// <summary>A config in <paramref name="dir"/> over the sample SentencePiece model, shards in dir/shards.</summary>
    private static ZCodeConfig Config(string dir, string dataYaml)
        => ConfigLoader.LoadText($"data:\n  spm_model: {DataTestPaths.SpmModel}\n  shard_dir: shards\n{dataYaml}",
            Path.Combine(dir, "c.yaml"), baseDirectory: dir);

    private static string Pair(string section, string src, string tgt)
        => $"  {section}:\n    - {{src: en, tgt: de, src_path: {src}, tgt_path: {tgt}}}\n";

    [Test]
    public void LineReaderHandlesBomCrLfAndMissingFinalNewline()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var bytes = new byte[] { 0xEF, 0xBB, 0xBF }.Concat(Encoding.UTF8.GetBytes("eins\r\nzwei\n\ndrei")).ToArray();
        var path = tmp.WriteBytes("a.txt", bytes);
        Assert.That(Utf8LineReader.ReadLines(path), Is.EqualTo(new[] { "eins", "zwei", "", "drei" }));
        var path2 = tmp.Write("b.txt", "x\ny\n");
        Assert.That(Utf8LineReader.ReadLines(path2), Is.EqualTo(new[] { "x", "y" }));
        Assert.That(Utf8LineReader.ReadLines(tmp.Write("c.txt", "")), Is.Empty);
    }

    [Test]
    public void LineReaderReadsLongLinesAcrossBuffers()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var longLine = string.Concat(Enumerable.Repeat("ä€😀", 40_000));
        var path = tmp.Write("long.txt", "a\n" + longLine + "\nb\n");
        Assert.That(Utf8LineReader.ReadLines(path), Is.EqualTo(new[] { "a", longLine, "b" }));
    }

    [Test]
    public void InvalidUtf8NamesFileLineAndColumn()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var bytes = Encoding.UTF8.GetBytes("good line\nalso good\nab")
            .Concat(new byte[] { 0xC3, 0x28 }).Concat(Encoding.UTF8.GetBytes("cd\nlast\n")).ToArray();
        var path = tmp.WriteBytes("bad.txt", bytes);
        var e = Assert.Throws<UserInputException>(() => Utf8LineReader.ReadLines(path).ToList())!;
        Assert.That(e.Message, Does.StartWith($"{path}:3:3: invalid UTF-8"));
        Assert.That(e.Message, Does.Contain("0xC3"));
    }

    [Test]
    public void MissingFileNamesThePath()
    {
        var path = Path.Combine(Path.GetTempPath(), "zcode-nope", "x.txt");
        var e = Assert.Throws<UserInputException>(() => Utf8LineReader.ReadLines(path))!;
        Assert.That(e.Message, Is.EqualTo($"{path}: file not found"));
    }

    [Test]
    public void LineCountMismatchNamesBothFilesAndCounts([Values("parallel", "valid", "test")] string section)
    {
        using var tmp = DataTestPaths.NewTempDir();
        var src = tmp.Write("x.en", "one\ntwo\nthree\n");
        var tgt = tmp.Write("x.de", "eins\nzwei\n");
        var e = Assert.Throws<UserInputException>(() => DataPreparer.Prepare(Config(tmp.Path, Pair(section, src, tgt))))!;
        Assert.That(e.Message, Does.StartWith($"{src}:3:1: data.{section}[0]: parallel files must have the same number of lines"));
        Assert.That(e.Message, Does.Contain($"{src} has 3").And.Contain($"{tgt} has 2"));
    }

    [Test]
    public void InvalidUtf8InACorpusNamesFileAndLine([Values("parallel", "valid", "test")] string section)
    {
        using var tmp = DataTestPaths.NewTempDir();
        var src = tmp.Write("s.txt", "one\ntwo\n");
        var tgt = tmp.WriteBytes("t.txt", Encoding.UTF8.GetBytes("eins\n").Concat(new byte[] { 0xFF, 0x0A }).ToArray());
        var e = Assert.Throws<UserInputException>(() => DataPreparer.Prepare(Config(tmp.Path, Pair(section, src, tgt))))!;
        Assert.That(e.Message, Does.StartWith($"{tgt}:2:1: invalid UTF-8"));
    }

    [Test]
    public void EmptyAndTooLongLinesAreSkippedAndCounted()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var longSentence = string.Join(' ', Enumerable.Repeat("international", 30)); // far more than 20 tokens
        tmp.Write("s.txt", $"Hello world.\n\n   \nGood morning.\n{longSentence}\nThank you.\nshort\n");
        tmp.Write("t.txt", $"Hallo Welt.\nleer\n\t\nGuten Morgen.\nlang\nDanke.\n{longSentence}\n");
        var cfg = Config(tmp.Path, "  max_len: 20\n  both_directions: false\n" + Pair("parallel", "s.txt", "t.txt") + Pair("valid", "s.txt", "t.txt"));
        var data = DataSource.FromShards(cfg);
        foreach (var c in data.Corpora)
            Assert.That((c.Lines, c.SkippedEmpty, c.SkippedTooLong, c.Kept), Is.EqualTo((7L, 2L, 2L, 3)), c.Key);
        foreach (var set in new[] { data.TrainSets.Single(), data.ValidSets.Single() })
        {
            Assert.That(set.Count, Is.EqualTo(3), set.Name);
            Assert.That((set.SrcLang, set.TgtLang), Is.EqualTo(("eng_Latn", "deu_Latn")));
            Assert.That(Tok.Decode(set.Get(0).Source[1..^1]), Is.EqualTo("Hello world."));
            Assert.That(Tok.Decode(set.Get(1).Target[..^1]), Is.EqualTo("Guten Morgen."));
            Assert.That(Tok.Decode(set.Get(2).Target[..^1]), Is.EqualTo("Danke."));
            for (var i = 0; i < set.Count; i++)
            {
                Assert.That(set.SourceLength(i), Is.LessThanOrEqualTo(20));
                Assert.That(set.TargetLength(i) + 1, Is.LessThanOrEqualTo(20), "room for the tag when reversed");
            }
        }
    }

    [Test]
    public void RelativePathsResolveAgainstTheBaseDirectory()
    {
        using var tmp = DataTestPaths.NewTempDir();
        tmp.Write(Path.Combine("corpora", "a.en"), "Yes.\n");
        tmp.Write(Path.Combine("corpora", "a.fr"), "Oui.\n");
        var index = DataPreparer.Prepare(Config(tmp.Path, "  parallel:\n    - {src: en, tgt: fr, src_path: corpora/a.en, tgt_path: corpora/a.fr}\n")).Index;
        Assert.That(index.Files.Select(f => f.Path),
            Is.EqualTo(new[] { Path.Combine(tmp.Path, "corpora", "a.en"), Path.Combine(tmp.Path, "corpora", "a.fr") }));
        Assert.That(index.Corpora.Single().Kept, Is.EqualTo(1));
        Assert.That(File.Exists(Path.Combine(tmp.Path, "shards", ShardIndex.FileName)), "data.shard_dir resolves there too");
        // The validator, which every command runs before it prepares, resolves them the same way.
        var e = Assert.Throws<UserInputException>(() => ConfigValidator.ValidateRun(
            Config(tmp.Path, "  parallel:\n    - {src: en, tgt: fr, src_path: corpora/missing.en, tgt_path: corpora/a.fr}\n"), RunChecks.Data))!;
        Assert.That(e.Message, Does.Contain(Path.Combine(tmp.Path, "corpora", "missing.en")));
    }

    [Test]
    public void DirectionsAreTaggedBothWays()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var src = tmp.Write("s.txt", "Hello world.\nGood morning.\n");
        var tgt = tmp.Write("t.txt", "Hallo Welt.\nGuten Morgen.\n");
        var data = DataSource.FromShards(Config(tmp.Path, Pair("parallel", src, tgt)));
        Assert.That(data.TrainSets.Select(s => s.Name), Is.EqualTo(new[] { "mt:eng_Latn-deu_Latn", "mt:deu_Latn-eng_Latn" }));
        var (forward, backward) = (data.TrainSets[0], data.TrainSets[1]);

        var f = forward.Get(1);
        Assert.That(f.Source[0], Is.EqualTo(Tok.TokenToId("<2deu_Latn>")));
        Assert.That(f.Source[^1], Is.EqualTo(Tok.EosId));
        Assert.That(Tok.Decode(f.Source[1..^1]), Is.EqualTo("Good morning."));
        Assert.That(f.Target[^1], Is.EqualTo(Tok.EosId));
        Assert.That(Tok.Decode(f.Target[..^1]), Is.EqualTo("Guten Morgen."));
        Assert.That((f.SrcLang, f.TgtLang, f.Task), Is.EqualTo(("eng_Latn", "deu_Latn", "mt")));
        Assert.That(forward.SourceLength(1), Is.EqualTo(f.Source.Length));
        Assert.That(forward.TargetLength(1), Is.EqualTo(f.Target.Length));

        var b = backward.Get(0);
        Assert.That(b.Source[0], Is.EqualTo(Tok.TokenToId("<2eng_Latn>")));
        Assert.That(Tok.Decode(b.Source[1..^1]), Is.EqualTo("Hallo Welt."));
        Assert.That(Tok.Decode(b.Target[..^1]), Is.EqualTo("Hello world."));
        Assert.That(backward.SourceLength(0), Is.EqualTo(b.Source.Length));
    }
}
