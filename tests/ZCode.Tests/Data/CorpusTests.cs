using System.Text;
using ZCode.Data;

namespace ZCode.Tests.Data;

public class CorpusTests
{
    private static ZCode.Text.SpmTokenizer Tok => DataTestPaths.Tokenizer;

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
    public void LineCountMismatchNamesBothFilesAndCounts()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var src = tmp.Write("train.en", "one\ntwo\nthree\n");
        var tgt = tmp.Write("train.de", "eins\nzwei\n");
        var e = Assert.Throws<UserInputException>(() =>
            ParallelCorpus.Load(src, tgt, "en", "de", Tok, 128, tmp.Path))!;
        Assert.That(e.Message, Does.Contain(src).And.Contain(tgt));
        Assert.That(e.Message, Does.Contain($"{src} has 3").And.Contain($"{tgt} has 2"));
    }

    [Test]
    public void InvalidUtf8InACorpusNamesFileAndLine()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var src = tmp.Write("s.txt", "one\ntwo\n");
        var tgt = tmp.WriteBytes("t.txt", Encoding.UTF8.GetBytes("eins\n").Concat(new byte[] { 0xFF, 0x0A }).ToArray());
        var e = Assert.Throws<UserInputException>(() => ParallelCorpus.Load(src, tgt, "en", "de", Tok, 128, tmp.Path))!;
        Assert.That(e.Message, Does.StartWith($"{tgt}:2:1: invalid UTF-8"));
    }

    [Test]
    public void EmptyAndTooLongLinesAreSkippedAndCounted()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var longSentence = string.Join(' ', Enumerable.Repeat("international", 30)); // far more than 20 tokens
        var src = tmp.Write("s.txt", $"Hello world.\n\n   \nGood morning.\n{longSentence}\nThank you.\nshort\n");
        var tgt = tmp.Write("t.txt", $"Hallo Welt.\nleer\n\t\nGuten Morgen.\nlang\nDanke.\n{longSentence}\n");
        var c = ParallelCorpus.Load("s.txt", "t.txt", "eng_Latn", "de", Tok, 20, tmp.Path);
        Assert.That(c.LinesRead, Is.EqualTo(7));
        Assert.That(c.SkippedEmpty, Is.EqualTo(2));
        Assert.That(c.SkippedTooLong, Is.EqualTo(2));
        Assert.That(c.Count, Is.EqualTo(3));
        Assert.That((c.SrcLang, c.TgtLang), Is.EqualTo(("eng_Latn", "deu_Latn")));
        Assert.That(Tok.Decode(c.Source(0)), Is.EqualTo("Hello world."));
        Assert.That(Tok.Decode(c.Target(2)), Is.EqualTo("Danke."));
        for (var i = 0; i < c.Count; i++)
        {
            Assert.That(c.Source(i).Length + 2, Is.LessThanOrEqualTo(20));
            Assert.That(c.Target(i).Length + 2, Is.LessThanOrEqualTo(20));
        }
    }

    [Test]
    public void RelativePathsResolveAgainstTheBaseDirectory()
    {
        using var tmp = DataTestPaths.NewTempDir();
        tmp.Write(Path.Combine("corpora", "a.en"), "Yes.\n");
        tmp.Write(Path.Combine("corpora", "a.fr"), "Oui.\n");
        var c = ParallelCorpus.Load("corpora/a.en", "corpora/a.fr", "en", "fr", Tok, 128, tmp.Path);
        Assert.That(c.SrcPath, Is.EqualTo(Path.Combine(tmp.Path, "corpora", "a.en")));
        Assert.That(c.Count, Is.EqualTo(1));
        var e = Assert.Throws<UserInputException>(() =>
            ParallelCorpus.Load("corpora/missing.en", "corpora/a.fr", "en", "fr", Tok, 128, tmp.Path))!;
        Assert.That(e.Message, Does.Contain(Path.Combine(tmp.Path, "corpora", "missing.en")));
    }

    [Test]
    public void DirectionBuildsTaggedExamplesBothWays()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var src = tmp.Write("s.txt", "Hello world.\nGood morning.\n");
        var tgt = tmp.Write("t.txt", "Hallo Welt.\nGuten Morgen.\n");
        var c = ParallelCorpus.Load(src, tgt, "en", "de", Tok, 128, tmp.Path);
        var forward = new MtDirection("eng_Latn", "deu_Latn", Tok.LanguageTagId("de"), Tok.EosId);
        forward.Add(c, reversed: false);
        var backward = new MtDirection("deu_Latn", "eng_Latn", Tok.LanguageTagId("en"), Tok.EosId);
        backward.Add(c, reversed: true);
        Assert.Throws<ArgumentException>(() => backward.Add(c, reversed: false));

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
        Assert.That(backward.Name, Is.EqualTo("mt:deu_Latn-eng_Latn"));
    }
}
