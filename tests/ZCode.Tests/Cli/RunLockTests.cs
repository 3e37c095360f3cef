using System.Diagnostics;
using System.Security.Cryptography;
using ZCode.Training;

namespace ZCode.Tests.Cli;

/// <summary>
/// One writer per run directory, with real processes: two `zcode train --resume auto` started at once into one
/// directory (one is refused at once, the other's run is exactly a run alone), and a holder killed with SIGKILL leaves
/// no stale lock.
/// </summary>
[NonParallelizable]
public class RunLockTests
{
    private string root = "";

    [SetUp]
    public void Create() => Directory.CreateDirectory(root = Path.Combine(Path.GetTempPath(), "zcode-lock-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void Remove() => Directory.Delete(root, recursive: true);

    private static string[] Train(string output, int steps, int saveInterval = 3) =>
    [
        "train", "--set", $"train.max_steps={steps}", "--set", $"train.save_interval={saveInterval}", "--set", "train.log_interval=1",
        "--set", "train.tokens_per_batch=512", "--set", "train.threads=1", "--set", "train.keep_last=10",
        "--resume", "auto", "--output", output,
    ];

    // What differs between two identical runs: the clock and the process's resident memory.
    private static readonly string[] TimingKeys = ["tokens_per_s", "step_s", "data_wait_s", "elapsed_s", "rss_mb"];

    [Test]
    public void TwoRunsStartedAtOnceLeaveOneWriterWhoseRunIsExactlyARunAlone()
    {
        var alone = Path.Combine(root, "alone");
        var shared = Path.Combine(root, "shared");
        ZcodeProcess.RunToEnd(alone, Train(alone, 6));

        using var a = ZcodeProcess.Start(Train(shared, 6));
        using var b = ZcodeProcess.Start(Train(shared, 6));
        Assert.That(a.WaitForExit(TimeSpan.FromMinutes(5)) && b.WaitForExit(TimeSpan.FromMinutes(5)), Is.True);
        Assert.That(new[] { a.ExitCode, b.ExitCode }, Is.EquivalentTo(new[] { 0, 2 }), a.Stderr + b.Stderr);
        var (winner, loser) = a.ExitCode == 0 ? (a, b) : (b, a);
        TestContext.Out.WriteLine($"the refused run exited after {loser.Elapsed.TotalSeconds:F2} s");
        Assert.That(loser.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)), "the second run is refused at once");
        Assert.That(loser.Stderr.Trim().Split('\n'), Has.Length.EqualTo(1), loser.Stderr);
        Assert.That(loser.Stderr, Does.Contain($"{shared}: another zcode train is writing into this run directory " +
                                               $"(pid {winner.Id} on host {System.Net.Dns.GetHostName()}"));

        Assert.That(Directory.GetFileSystemEntries(shared).Select(Path.GetFileName).Order(),
            Is.EqualTo(Directory.GetFileSystemEntries(alone).Select(Path.GetFileName).Order()));
        var expected = ZcodeProcess.Metrics(alone);
        var actual = ZcodeProcess.Metrics(shared);
        Assert.That(actual, Has.Count.EqualTo(expected.Count).And.Count.EqualTo(6));
        for (int i = 0; i < expected.Count; i++)
            foreach (var p in expected[i].EnumerateObject().Where(p => !TimingKeys.Contains(p.Name)))
                Assert.That(actual[i].GetProperty(p.Name).GetRawText(), Is.EqualTo(p.Value.GetRawText()), $"step {i + 1} {p.Name}");
        Assert.That(File.ReadAllText(Path.Combine(shared, "train.log")).Split("output directory").Length - 1, Is.EqualTo(1),
            "train.log holds one run");

        var checkpoints = Directory.GetDirectories(Path.Combine(alone, "checkpoints")).Select(Path.GetFileName).Order().ToList();
        Assert.That(checkpoints, Is.EqualTo(new[] { "step-0000003", "step-0000006" }));
        Assert.That(Directory.GetDirectories(Path.Combine(shared, "checkpoints")).Select(Path.GetFileName).Order(), Is.EqualTo(checkpoints));
        foreach (var step in checkpoints)
            foreach (var file in Directory.GetFiles(Path.Combine(alone, "checkpoints", step!), "*.safetensors"))
                Assert.That(Sha256(Path.Combine(shared, "checkpoints", step!, Path.GetFileName(file))), Is.EqualTo(Sha256(file)),
                    $"{step}/{Path.GetFileName(file)}");
    }

    [Test]
    public void AfterTheHolderIsKilledWithSigkillResumeAutoStartsAtOnce()
    {
        var output = Path.Combine(root, "run");
        using (var holder = ZcodeProcess.Start(Train(output, 1000, saveInterval: 2)))
        {
            var clock = Stopwatch.StartNew();
            while (ZcodeProcess.LastLoggedStep(output) < 3 && !holder.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2))
                Thread.Sleep(10);
            Assert.That(holder.HasExited, Is.False, "the run ended before it could be killed: " + holder.Stderr);
            Assert.That(RunDirectoryLock.ReadHolder(output)!.Pid, Is.EqualTo(holder.Id));
            holder.Kill();
            holder.WaitForExit();
        }

        using var next = ZcodeProcess.Start(Train(output, 4, saveInterval: 2));
        Assert.That(next.WaitForExit(TimeSpan.FromMinutes(2)), Is.True);
        Assert.That(next.ExitCode, Is.EqualTo(0), next.Stderr);
        Assert.That(RunDirectoryLock.ReadHolder(output)!.Pid, Is.EqualTo(next.Id), "the new run took the lock the killed one held");
        Assert.That(File.ReadAllText(Path.Combine(output, "train.log")), Does.Contain("resumed from"));
        Assert.That(ZcodeProcess.LastLoggedStep(output), Is.EqualTo(4));
    }

    private static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
