using System.Text.Json;
using ZCode.Runtime;
using static ZCode.Tests.CliRunner;

namespace ZCode.Tests.Training;

/// <summary>bf16 training on CPU against fp32, and the device reads of a training run (GPU-readiness on a CPU machine).</summary>
[NonParallelizable]
public class DeviceTrainingTests
{
    private readonly List<string> outputs = [];

    private string NewOutput()
    {
        var dir = Path.Combine(Path.GetTempPath(), "zcode-device-" + Guid.NewGuid().ToString("N"));
        outputs.Add(dir);
        return dir;
    }

    [TearDown]
    public void RemoveOutputs()
    {
        foreach (var dir in outputs.Where(Directory.Exists))
            Directory.Delete(dir, recursive: true);
        outputs.Clear();
    }

    private static string[] Train(string output, int steps, params string[] sets)
    {
        var args = new List<string> { "train", "--output", output, "--set", $"train.max_steps={steps}", "--set", "train.save_interval=0",
            "--set", "train.device=cpu" };
        foreach (var s in sets) args.AddRange(["--set", s]);
        var (code, _, err) = Run([.. args]);
        Assert.That(code, Is.EqualTo(0), err);
        return File.ReadAllLines(Path.Combine(output, "metrics.jsonl"));
    }

    private static double LossAt(string[] metrics, int step) => metrics
        .Select(l => JsonDocument.Parse(l).RootElement)
        .Single(r => r.GetProperty("step").GetInt32() == step && !r.TryGetProperty("type", out _)).GetProperty("loss").GetDouble();

    [Test]
    public void Bf16OnCpu_TrainingLossWithin2PercentAndValidationLossWithin1PercentOfFp32After100Steps()
    {
        // The same batches, dropout and routing randomness in both runs: only the compute precision differs.
        // One thread and small batches keep the two 100-step runs at a few seconds each; the validation at step 100
        // measures every kept line of data.valid (and translates one sentence per direction).
        string[] common = ["train.tokens_per_batch=256", "train.threads=1", "train.log_interval=50", "train.eval_interval=100",
            "eval.valid_sentences=1", "eval.valid_beam=1"];
        var fp32Metrics = Train(NewOutput(), 100, [.. common, "train.dtype=fp32"]);
        var bf16Metrics = Train(NewOutput(), 100, [.. common, "train.dtype=bf16"]);
        var (fp32, bf16) = (LossAt(fp32Metrics, 100), LossAt(bf16Metrics, 100));
        var (fp32Valid, bf16Valid) = (ValidLoss(fp32Metrics), ValidLoss(bf16Metrics));
        TestContext.Out.WriteLine($"loss at step 100: fp32 {fp32:F4}, bf16 {bf16:F4} ({(bf16 - fp32) / fp32:P2}); " +
                                  $"validation loss fp32 {fp32Valid:F4}, bf16 {bf16Valid:F4} ({(bf16Valid - fp32Valid) / fp32Valid:P2})");
        Assert.That(fp32, Is.LessThan(LossAt(fp32Metrics, 1) - 1.0), "the runs learn something (the loss falls by over 1 nat)");
        Assert.That(Math.Abs(bf16 - fp32) / fp32, Is.LessThan(0.02));
        Assert.That(Math.Abs(bf16Valid - fp32Valid) / fp32Valid, Is.LessThan(0.01));
    }

    private static double ValidLoss(string[] metrics) => metrics.Select(l => JsonDocument.Parse(l).RootElement)
        .Single(r => r.TryGetProperty("type", out var t) && t.GetString() == "valid").GetProperty("valid_loss").GetDouble();

    [Test]
    public void DeviceReads_DependOnLoggedSteps_NotOnSteps()
    {
        // Steps 1 and the last are logged (log_interval larger than the run): a longer run reads the device exactly
        // as often as a short one, and uploads exactly one buffer per micro-batch.
        string[] sets = ["train.tokens_per_batch=256", "train.threads=1", "train.log_interval=1000", "train.grad_accumulation=2"];
        long reads0 = HostTransfers.Reads, uploads0 = HostTransfers.Uploads;
        Train(NewOutput(), 3, sets);
        long shortReads = HostTransfers.Reads - reads0, shortUploads = HostTransfers.Uploads - uploads0;
        reads0 = HostTransfers.Reads;
        uploads0 = HostTransfers.Uploads;
        Train(NewOutput(), 15, sets);
        long longReads = HostTransfers.Reads - reads0, longUploads = HostTransfers.Uploads - uploads0;
        TestContext.Out.WriteLine($"reads: {shortReads} (3 steps), {longReads} (15 steps); uploads {shortUploads}, {longUploads}");
        Assert.That(longReads, Is.EqualTo(shortReads), "reads happen at logged steps and saves only");
        Assert.That(shortReads, Is.GreaterThan(0), "the logged steps do read");
        Assert.That(shortUploads, Is.EqualTo(3 * 2));
        Assert.That(longUploads, Is.EqualTo(15 * 2));
    }
}
