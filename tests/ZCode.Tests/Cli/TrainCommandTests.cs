using System.Text.Json;
using static ZCode.Tests.CliRunner;

namespace ZCode.Tests.Cli;

/// <summary>`zcode train` end to end on the bundled data: outputs, metrics schema, checkpoints, bad input.</summary>
public class TrainCommandTests
{
    private string output = "";

    [SetUp]
    public void CreateOutput() => output = Path.Combine(Path.GetTempPath(), "zcode-train-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void RemoveOutput()
    {
        if (Directory.Exists(output))
            Directory.Delete(output, recursive: true);
    }

    [Test]
    public void ShortRunWritesMetricsLogAndCheckpoints()
    {
        var (code, _, err) = Run("train", "--set", "train.max_steps=4", "--set", "train.log_interval=1",
            "--set", "train.save_interval=2", "--set", "train.tokens_per_batch=512", "--output", output);
        Assert.That(code, Is.EqualTo(0), err);

        var lines = File.ReadAllLines(Path.Combine(output, "metrics.jsonl"));
        Assert.That(lines, Has.Length.EqualTo(4));
        using var first = JsonDocument.Parse(lines[0]);
        var root = first.RootElement;
        foreach (var key in new[] { "step", "loss", "lr", "tokens", "tokens_per_s", "aux_loss", "grad_norm", "dropped_fraction", "expert_load", "router_entropy", "expert_usage_by_lang" })
            Assert.That(root.TryGetProperty(key, out _), Is.True, key);
        Assert.That(root.GetProperty("step").GetInt32(), Is.EqualTo(1));
        var load = root.GetProperty("expert_load");
        Assert.That(load.GetArrayLength(), Is.EqualTo(2), "m3-tiny has one MoE layer in the encoder and one in the decoder");
        Assert.That(load[0].EnumerateArray().Sum(e => e.GetDouble()), Is.EqualTo(1.0).Within(1e-3));
        Assert.That(root.GetProperty("loss").GetDouble(), Is.GreaterThan(0));

        var checkpoints = Path.Combine(output, "checkpoints");
        Assert.That(Directory.GetDirectories(checkpoints).Select(Path.GetFileName), Is.EquivalentTo(new[] { "step-0000002", "step-0000004" }));
        Assert.That(File.ReadAllText(Path.Combine(checkpoints, "latest")).Trim(), Is.EqualTo("step-0000004"));
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(checkpoints, "step-0000004", "manifest.json")));
        Assert.That(manifest.RootElement.GetProperty("step").GetInt32(), Is.EqualTo(4));
        Assert.That(manifest.RootElement.GetProperty("files").TryGetProperty("shared.safetensors", out _), Is.True);
        Assert.That(File.ReadAllText(Path.Combine(output, "train.log")), Does.Contain("finished at step 4"));

        // The checkpoint reopens with verified checksums and the same weights; corruption is detected.
        var loaded = ZCode.Checkpoints.CheckpointReader.Load(output);
        Assert.That(loaded.Step, Is.EqualTo(4));
        Assert.That(loaded.Config.Train.MaxSteps, Is.EqualTo(4));
        Assert.That(loaded.Model.MoeLayers, Has.Count.EqualTo(2));
        var weights = Path.Combine(checkpoints, "step-0000002", "shared.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(weights, bytes);
        var corrupt = Assert.Throws<UserInputException>(() => ZCode.Checkpoints.CheckpointReader.Load(Path.Combine(checkpoints, "step-0000002")))!;
        Assert.That(corrupt.Message, Does.Contain("checksum mismatch"));

        // A second run into the same directory must not overwrite the first one's checkpoints.
        var again = Run("train", "--set", "train.max_steps=1", "--output", output);
        Assert.That(again.Code, Is.EqualTo(2));
        Assert.That(again.Err.Trim(), Does.Contain("already holds checkpoints"));
    }

    [Test]
    public void VocabularyMismatchIsBadInput()
    {
        var (code, _, err) = Run("train", "--set", "model.vocab_size=9000", "--set", "train.max_steps=1", "--output", output);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim(), Does.StartWith("--set model.vocab_size=9000: model.vocab_size: is 9000 but the SentencePiece model"));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
    }

    [Test]
    public void ExpertParallelLargerThanTheWorldIsBadInput()
    {
        var (code, _, err) = Run("train", "--set", "parallel.expert_parallel=2", "--output", output);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.StartWith("--set parallel.expert_parallel=2: parallel.expert_parallel: 2 does not divide the 1 process(es)"));
    }

    [Test]
    public void UnknownOptionIsBadInput()
    {
        var (code, _, err) = Run("train", "--bogus");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--bogus").And.Contain("zcode train --help"));
    }
}
