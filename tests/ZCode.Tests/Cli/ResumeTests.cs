using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace ZCode.Tests.Cli;

/// <summary>
/// Exact resume: m3-tiny trained 40 steps without interruption versus the same run killed with SIGKILL after step 25
/// and restarted with --resume auto. Every step after the resume point must log the same loss, grad norm and token
/// count, every validation the same figures and the same best and patience counter, and the final weights, their
/// moving average, the optimizer state and the best checkpoint must be byte-identical.
/// </summary>
[NonParallelizable]
public class ResumeTests
{
    private string root = "";

    [SetUp]
    public void Create() => Directory.CreateDirectory(root = Path.Combine(Path.GetTempPath(), "zcode-resume-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void Remove() => Directory.Delete(root, recursive: true);

    private static readonly string[] Settings =
    [
        "--set", "train.max_steps=40", "--set", "train.save_interval=10", "--set", "train.log_interval=1",
        "--set", "train.tokens_per_batch=512", "--set", "train.threads=1", "--set", "train.keep_last=10",
        "--set", "train.eval_interval=10", "--set", "train.best_metric=chrf", "--set", "train.patience=5",
        "--set", "train.ema_decay=0.9", "--set", "eval.valid_sentences=4", "--set", "eval.valid_beam=1",
    ];

    private static ZcodeProcess Start(string output, params string[] extra)
        => ZcodeProcess.Start(Settings.Concat(extra).Prepend("train").Concat(["--output", output]));

    private static void RunToEnd(string output, params string[] extra)
        => ZcodeProcess.RunToEnd(output, Settings.Concat(extra).Prepend("train").Concat(["--output", output]));

    private static bool IsValidation(JsonElement r) => r.TryGetProperty("type", out var t) && t.GetString() == "valid";

    private static List<JsonElement> Records(string output) => ZcodeProcess.Metrics(output);

    private static List<JsonElement> Metrics(string output) => Records(output).Where(r => !IsValidation(r)).ToList();

    private static long LastLoggedStep(string output) => ZcodeProcess.LastLoggedStep(output);

    [Test]
    public void SigkillThenResumeAutoReproducesTheUninterruptedRun()
    {
        var full = Path.Combine(root, "full");
        var killed = Path.Combine(root, "killed");
        RunToEnd(full);

        using (var p = Start(killed))
        {
            var clock = Stopwatch.StartNew();
            while (LastLoggedStep(killed) < 25 && !p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(5))
                Thread.Sleep(10);
            Assert.That(p.HasExited, Is.False, "the run ended before it could be killed");
            p.Kill(); // SIGKILL: no handler runs, no final checkpoint
            p.WaitForExit();
        }
        var killedAt = LastLoggedStep(killed);
        Assert.That(killedAt, Is.InRange(25, 29), "killed between checkpoints 20 and 30");
        Assert.That(Directory.Exists(Path.Combine(killed, "checkpoints", "step-0000030")), Is.False);

        RunToEnd(killed, "--resume", "auto");
        Assert.That(File.ReadAllText(Path.Combine(killed, "train.log")), Does.Contain("resumed from").And.Contain("step-0000020"));

        var a = Metrics(full);
        var b = Metrics(killed);
        Assert.That(b.Select(m => m.GetProperty("step").GetInt32()), Is.EqualTo(Enumerable.Range(1, 40)),
            "metrics.jsonl keeps steps 1-20, drops the lost 21-" + killedAt + " and appends 21-40 once");
        for (int i = 20; i < 40; i++)
            foreach (var key in new[] { "loss", "nll_loss", "grad_norm", "lr", "total_tokens", "aux_loss" })
                Assert.That(b[i].GetProperty(key).GetRawText(), Is.EqualTo(a[i].GetProperty(key).GetRawText()), $"step {i + 1} {key}");

        // Validations: the same figures, best and patience counter after the resume as without it (seconds aside).
        var va = Records(full).Where(IsValidation).ToList();
        var vb = Records(killed).Where(IsValidation).ToList();
        Assert.That(vb.Select(r => r.GetProperty("step").GetInt32()), Is.EqualTo(new[] { 10, 20, 30, 40 }));
        for (int i = 0; i < va.Count; i++)
            foreach (var p in va[i].EnumerateObject().Where(p => p.Name != "seconds"))
                Assert.That(vb[i].GetProperty(p.Name).GetRawText(), Is.EqualTo(p.Value.GetRawText()), $"validation {i + 1} {p.Name}");

        // Stronger than 6-digit losses: the final weights, their average, the Adam moments and the best checkpoint are
        // the same bytes.
        foreach (var ckpt in new[] { "step-0000040", "best" })
        {
            var files = Directory.GetFiles(Path.Combine(full, "checkpoints", ckpt), "*.safetensors");
            Assert.That(files.Select(Path.GetFileName), Does.Contain("ema-shared.safetensors"));
            foreach (var file in files)
            {
                var other = Path.Combine(killed, "checkpoints", ckpt, Path.GetFileName(file));
                Assert.That(Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(other))),
                    Is.EqualTo(Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)))), $"{ckpt}/{Path.GetFileName(file)}");
            }
        }
    }

    [Test]
    public void ResumeNeverRefusesAndAutoOnEmptyDirectoryStartsFresh()
    {
        var output = Path.Combine(root, "run");
        var code = ZCode.Cli.CliApp.Run(["train", "--set", "train.max_steps=2", "--set", "train.tokens_per_batch=256", "--resume", "auto", "--output", output],
            new StringWriter(), new StringWriter());
        Assert.That(code, Is.EqualTo(0));
        var err = new StringWriter();
        code = ZCode.Cli.CliApp.Run(["train", "--set", "train.max_steps=2", "--output", output], new StringWriter(), err);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.ToString(), Does.Contain("--resume auto"));
    }
}
