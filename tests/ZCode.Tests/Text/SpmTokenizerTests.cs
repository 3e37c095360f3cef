using System.Diagnostics;
using ZCode.Tests.Data;
using ZCode.Text;

namespace ZCode.Tests.Text;

public class SpmTokenizerTests
{
    private static readonly Lazy<SpmTokenizer> Model = new(() => SpmTokenizer.Load(DataTestPaths.SpmModel));
    private static SpmTokenizer Tok => Model.Value;

    [Test]
    public void SpecialIdsAndVocabularySize()
    {
        Assert.That(Tok.VocabSize, Is.EqualTo(8000));
        Assert.That((Tok.PadId, Tok.UnkId, Tok.BosId, Tok.EosId), Is.EqualTo((0, 1, 2, 3)));
        Assert.That(Tok.IdToToken(Tok.PadId), Is.EqualTo("<pad>"));
        Assert.That(Tok.IdToToken(Tok.EosId), Is.EqualTo("</s>"));
        Assert.That(Tok.PieceType(Tok.BosId), Is.EqualTo(SpmPieceType.Control));
        Assert.That(Tok.ModelPath, Is.EqualTo(Path.GetFullPath(DataTestPaths.SpmModel)));
    }

    [Test]
    public void TagIdsAreTheUserDefinedSymbolIdsOfSpmVocab()
    {
        var vocab = File.ReadLines(DataTestPaths.SpmVocab).Select(l => l.Split('\t')[0]).ToArray();
        Assert.That(vocab, Has.Length.EqualTo(Tok.VocabSize));
        foreach (var l in Languages.All)
        {
            var tag = Languages.TagToken(l.Code);
            var expected = Array.IndexOf(vocab, tag);
            Assert.That(expected, Is.GreaterThan(3), tag);
            Assert.That(Tok.TokenToId(tag), Is.EqualTo(expected), tag);
            Assert.That(Tok.LanguageTagId(l.Code), Is.EqualTo(expected), tag);
            Assert.That(Tok.LanguageTagId(l.Iso639_1), Is.EqualTo(expected), tag);
            Assert.That(Tok.PieceType(expected), Is.EqualTo(SpmPieceType.UserDefined));
        }
        foreach (var task in new[] { Languages.MtTag, Languages.DaeTag, Languages.MaskToken })
        {
            Assert.That(Tok.TokenToId(task), Is.EqualTo(Array.IndexOf(vocab, task)), task);
            Assert.That(Tok.PieceType(Tok.TokenToId(task)), Is.EqualTo(SpmPieceType.UserDefined));
        }
        Assert.That(Tok.TokenToId("<2eng_Latn>"), Is.EqualTo(15));
    }

    [Test]
    public void UnknownPieceAndUnknownLanguage()
    {
        Assert.Throws<KeyNotFoundException>(() => Tok.TokenToId("<2xxx_Yyyy>"));
        Assert.That(Tok.TryTokenToId("<nope>", out _), Is.False);
        var e = Assert.Throws<UserInputException>(() => Tok.LanguageTagId("eng_Ltn"))!;
        Assert.That(e.Message, Does.Contain("did you mean 'eng_Latn'"));
    }

    [Test]
    public void MissingModelNamesThePath()
    {
        var path = Path.Combine(Path.GetTempPath(), "zcode-no-such-dir", "missing.model");
        var e = Assert.Throws<UserInputException>(() => SpmTokenizer.Load(path))!;
        Assert.That(e.Message, Does.StartWith(path + ":"));
        Assert.That(e.Message, Does.Contain("not found"));
    }

    [Test]
    public void GarbageModelIsBadInput()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var path = tmp.Write("bad.model", "this is not a protobuf");
        var e = Assert.Throws<UserInputException>(() => SpmTokenizer.Load(path))!;
        Assert.That(e.Message, Does.StartWith(path + ":"));
    }

    [Test]
    public void RoundTripsSampleLinesOfEveryLanguage()
    {
        foreach (var lang in DataTestPaths.SampleLanguages)
        {
            // Lines whose characters the model covers (character_coverage 0.9995 leaves some rare Han characters
            // as <unk>, which cannot round-trip).
            var lines = File.ReadLines(Path.Combine(DataTestPaths.DataSamples, "ntrex128", "valid", lang + ".txt"))
                .Take(50).Where(l => !Tok.Encode(l).Contains(Tok.UnkId)).Take(5).ToArray();
            Assert.That(lines, Has.Length.EqualTo(5), lang);
            foreach (var line in lines)
            {
                var ids = Tok.Encode(line);
                Assert.That(ids, Is.Not.Empty);
                Assert.That(ids, Has.All.InRange(0, Tok.VocabSize - 1));
                // nmt_nfkc normalization: NFKC (e.g. French no-break spaces become spaces), whitespace runs collapsed.
                Assert.That(Tok.Decode(ids), Is.EqualTo(NmtNormalized(line)), lang);
            }
        }
    }

    [Test]
    public void EncodeAddsNoSpecialTokensAndDecodeDropsControlPieces()
    {
        var ids = Tok.Encode("Hello world");
        Assert.That(ids, Has.None.EqualTo(Tok.BosId).And.None.EqualTo(Tok.EosId));
        var framed = new[] { Tok.BosId }.Concat(ids).Append(Tok.EosId).Append(Tok.PadId).Append(Tok.PadId);
        Assert.That(Tok.Decode(framed), Is.EqualTo("Hello world"));
        Assert.That(Tok.Encode(""), Is.Empty);
        Assert.That(Tok.Encode("   "), Is.Empty);
    }

    [Test]
    public void RunsOfUnknownCharactersBecomeOneUnk()
    {
        // Emoji are not in the sample model's vocabulary: SentencePiece merges the run into one <unk>.
        var ids = Tok.Encode("ok 😀😀😀 ok");
        Assert.That(ids.Count(i => i == Tok.UnkId), Is.EqualTo(1));
        Assert.That(Tok.Decode(ids), Is.EqualTo("ok  \u2047  ok"));
    }

    [Test]
    public void IdsEqualSpmEncodeOnEveryDataSampleLine()
    {
        if (!CanRun("spm_encode")) Assert.Ignore("spm_encode not installed (apt-get install sentencepiece)");
        var files = Directory.GetFiles(DataTestPaths.DataSamples, "*_*.txt", SearchOption.AllDirectories).Order().ToArray();
        Assert.That(files, Has.Length.EqualTo(30));
        long lines = 0, differ = 0;
        var examples = new List<string>();
        foreach (var file in files)
        {
            var expected = SpmEncode(file);
            var text = File.ReadAllLines(file);
            Assert.That(expected, Has.Length.EqualTo(text.Length), file);
            for (var i = 0; i < text.Length; i++)
            {
                lines++;
                var mine = string.Join(' ', Tok.Encode(text[i]));
                if (mine == expected[i]) continue;
                differ++;
                if (examples.Count < 3) examples.Add($"{file}:{i + 1}: ours [{mine}] spm [{expected[i]}]");
            }
        }
        TestContext.Out.WriteLine($"spm_encode parity: {differ} of {lines} lines differ");
        Assert.That(differ, Is.Zero, string.Join("\n", examples));
    }

    private static string NmtNormalized(string s)
        => System.Text.RegularExpressions.Regex.Replace(s.Normalize(System.Text.NormalizationForm.FormKC), @"\s+", " ").Trim();

    private static bool CanRun(string tool)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool)));

    private static string[] SpmEncode(string file)
    {
        var psi = new ProcessStartInfo("spm_encode", ["--model", DataTestPaths.SpmModel, "--output_format=id", file])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.Zero, "spm_encode failed");
        return output.Split('\n', StringSplitOptions.None)[..^1];
    }
}
