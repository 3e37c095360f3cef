using ZCode.Cli;
using ZCode.Tests.Data;
using ZCode.Text;

namespace ZCode.Tests.Text;

/// <summary>`zcode vocab`: conformance with spm_encode on every sample language, training, missing tools.</summary>
public class VocabCommandTests
{
    private static string? Which(string tool)
    {
        try { return VocabTrainer.FindTool(tool); }
        catch (UserInputException) { return null; }
    }

    [Test]
    public void EncodeIdsEqualSpmEncodeOnEverySampleLine()
    {
        var spm = Which("spm_encode");
        if (spm is null) Assert.Ignore("spm_encode is not installed (Debian package 'sentencepiece'); conformance not checked");
        var files = Directory.GetFiles(Path.Combine(DataTestPaths.DataSamples, "ntrex128", "train"), "*.txt")
            .Concat(Directory.GetFiles(Path.Combine(DataTestPaths.DataSamples, "udhr"), "*.txt")).Order().ToArray();
        Assert.That(files, Has.Length.EqualTo(20));
        foreach (var file in files)
        {
            var ours = new StringWriter();
            using (var input = File.OpenRead(file))
                ZCode.Cli.Commands.VocabCommand.Encode(DataTestPaths.Tokenizer, input, file, ours, asIds: true);
            var psi = new System.Diagnostics.ProcessStartInfo(spm!) { RedirectStandardInput = true, RedirectStandardOutput = true };
            psi.ArgumentList.Add($"--model={DataTestPaths.SpmModel}");
            psi.ArgumentList.Add("--output_format=id");
            using var p = System.Diagnostics.Process.Start(psi)!;
            var reading = p.StandardOutput.ReadToEndAsync();
            p.StandardInput.Write(File.ReadAllText(file));
            p.StandardInput.Close();
            p.WaitForExit();
            var expected = reading.Result.Split('\n');
            var actual = ours.ToString().Split('\n');
            Assert.That(actual.Length, Is.EqualTo(expected.Length), file);
            for (var i = 0; i < expected.Length; i++)
                Assert.That(actual[i], Is.EqualTo(expected[i]), $"{file}:{i + 1}");
        }
    }

    [Test]
    public void TrainBuildsAModelWithTagsAtFixedIds()
    {
        if (Which("spm_train") is null) Assert.Ignore("spm_train is not installed (Debian package 'sentencepiece')");
        using var tmp = DataTestPaths.NewTempDir();
        var model = Path.Combine(tmp.Path, "m.model");
        var err = new StringWriter();
        var code = CliApp.Run(["vocab", "train", "--input", Path.Combine(DataTestPaths.DataSamples, "udhr", "eng_Latn.txt"),
            "--input", Path.Combine(DataTestPaths.DataSamples, "udhr", "zho_Hans.txt"), "--size", "1000", "--out", model,
            "--sample-sentences", "1000"], new StringWriter(), err);
        Assert.That(code, Is.EqualTo(0), err.ToString());
        var tok = SpmTokenizer.Load(model);
        Assert.That((tok.PadId, tok.UnkId, tok.BosId, tok.EosId), Is.EqualTo((0, 1, 2, 3)));
        Assert.That(tok.LanguageTagId("eng_Latn"), Is.EqualTo(15));
        Assert.That(tok.TokenToId("<mask>"), Is.EqualTo(56));
        // Balanced sample: the 90-line Chinese file is upsampled towards the English one (T=5).
        Assert.That(err.ToString(), Does.Contain("zho_Hans.txt: 90 lines"));
        var take = VocabTrainer.SampleCounts([1_000_000, 1_000], 1000, 5.0);
        Assert.That(take[1], Is.GreaterThan(take[0] / 5), "p ∝ n^(1/T)");
    }

    [Test]
    public void MissingSpmTrainNamesTheDebianPackage()
    {
        var path = Environment.GetEnvironmentVariable("PATH");
        using var tmp = DataTestPaths.NewTempDir();
        try
        {
            Environment.SetEnvironmentVariable("PATH", tmp.Path);
            var err = new StringWriter();
            var code = CliApp.Run(["vocab", "train", "--input", DataTestPaths.SpmVocab, "--size", "1000", "--out",
                Path.Combine(tmp.Path, "m.model")], new StringWriter(), err);
            Assert.That(code, Is.EqualTo(CliApp.ExitBadInput));
            Assert.That(err.ToString(), Does.Contain("spm_train not found").And.Contain("'sentencepiece'"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("PATH", path);
        }
    }
}
