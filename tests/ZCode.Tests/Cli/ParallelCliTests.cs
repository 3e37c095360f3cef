using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace ZCode.Tests.Cli;

/// <summary>
/// The acceptance rule of data parallelism through the real CLI under mpirun (separate processes, Open MPI backend,
/// dropout on): `mpirun -np 2 zcode train` logs, at every step, the loss of one process trained with twice the gradient
/// accumulation on the same global batch, within 1e-5 relative, for ZeRO 0 and 2, and ZeRO 1 with the experts split
/// over the two ranks (expert_parallel 2). Rank 0 alone writes
/// metrics.jsonl and train.log; rank 1 its own train.rank1.log and its optimizer shard.
/// </summary>
[NonParallelizable]
public class ParallelCliTests
{
    private const int Steps = 10;
    private string root = "";

    [SetUp]
    public void Create() => Directory.CreateDirectory(root = Path.Combine(Path.GetTempPath(), "zcode-mpi-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void Remove() => Directory.Delete(root, recursive: true);

    private static string[] Settings(params string[] extra) =>
    [
        "train", "--set", $"train.max_steps={Steps}", "--set", "train.tokens_per_batch=512", "--set", "train.threads=1",
        "--set", "train.log_interval=1", "--set", "train.save_interval=5",
        "--set", "train.dtype=fp32", // the equivalence rule is an fp32 rule: bf16 rounds in a layout-dependent order
        .. extra,
    ];

    private static (int Code, string Output) Launch(int ranks, string output, params string[] args) => Launch(ranks, output, null, args);

    /// <param name="whileRunning">Called every 100 ms while the launcher runs, with its process id.</param>
    private static (int Code, string Output) Launch(int ranks, string output, Action<int>? whileRunning, params string[] args)
    {
        var dll = Path.Combine(TestContext.CurrentContext.TestDirectory, "zcode.dll");
        var psi = new ProcessStartInfo(ranks > 0 ? "mpirun" : "dotnet")
        {
            WorkingDirectory = CliRunner.RepoRoot, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        if (ranks > 0)
            foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(), "dotnet" }) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--output");
        psi.ArgumentList.Add(output);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + psi.FileName);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(4);
        while (whileRunning is not null && !p.HasExited && DateTime.UtcNow < deadline)
        {
            whileRunning(p.Id);
            p.WaitForExit(100);
        }
        if (!p.WaitForExit(deadline - DateTime.UtcNow))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{psi.FileName} did not finish in 4 minutes");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    private static List<double> Losses(string output) => File.ReadAllLines(Path.Combine(output, "metrics.jsonl"))
        .Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();

    [Test]
    public void TwoRanksUnderMpirunLogTheLossesOfOneProcessOnTheSameGlobalBatch()
    {
        var single = Path.Combine(root, "single");
        var (code, text) = Launch(0, single, Settings("--set", "train.grad_accumulation=2"));
        Assert.That(code, Is.EqualTo(0), text);
        var reference = Losses(single);
        Assert.That(reference, Has.Count.EqualTo(Steps));

        foreach (var (stage, ep) in new[] { (0, 1), (2, 1), (1, 2) })
        {
            var output = Path.Combine(root, $"np2-zero{stage}-ep{ep}");
            (code, text) = Launch(2, output, Settings("--set", $"parallel.zero_stage={stage}", "--set", $"parallel.expert_parallel={ep}"));
            Assert.That(code, Is.EqualTo(0), text);
            var losses = Losses(output);
            Assert.That(losses, Has.Count.EqualTo(Steps), $"zero {stage}: rank 0 alone writes metrics.jsonl, once per step");
            for (int i = 0; i < Steps; i++)
                Assert.That(Math.Abs(losses[i] - reference[i]) / reference[i], Is.LessThanOrEqualTo(1e-5),
                    $"zero {stage}, expert_parallel {ep}, step {i + 1}: {losses[i]} vs {reference[i]}");
            Assert.That(File.ReadAllText(Path.Combine(output, "train.log")), Does.Contain("layout: 2 ranks"));
            Assert.That(File.Exists(Path.Combine(output, "train.rank1.log")), Is.True);
            var step5 = Path.Combine(output, "checkpoints", "step-0000005");
            Assert.That(File.Exists(Path.Combine(step5, "optimizer-zero-rank00001.safetensors")), Is.EqualTo(stage > 0));
        }
    }

    [Test]
    public void ValidationOnTwoExpertParallelRanksPrintsTheNumbersOfOneProcess()
    {
        // Both ranks form one expert group: every validation batch runs on both (their MoE layers exchange tokens).
        string[] validation =
        [
            .. ZCode.Tests.Training.ValidationTests.Small(Path.Combine(root, "shards")).SelectMany(s => new[] { "--set", s }),
            "--set", "train.eval_interval=5",
        ];
        var single = Path.Combine(root, "valid-single");
        var (code, text) = Launch(0, single, [.. Settings("--set", "train.grad_accumulation=2"), .. validation]);
        Assert.That(code, Is.EqualTo(0), text);
        var output = Path.Combine(root, "valid-np2-ep2");
        (code, text) = Launch(2, output, [.. Settings("--set", "parallel.expert_parallel=2"), .. validation]);
        Assert.That(code, Is.EqualTo(0), text);

        var (a, b) = (ZCode.Tests.Training.ValidationTests.ValidRecords(single), ZCode.Tests.Training.ValidationTests.ValidRecords(output));
        Assert.That(b.Select(r => r.GetProperty("step").GetInt32()), Is.EqualTo(new[] { 5, 10 }));
        for (int i = 0; i < a.Count; i++)
            foreach (var d in a[i].GetProperty("directions").EnumerateObject())
            {
                var other = b[i].GetProperty("directions").GetProperty(d.Name);
                foreach (var (key, tolerance) in new[] { ("nll", 1e-4), ("bleu", 0.01), ("chrf", 0.01) })
                    Assert.That(other.GetProperty(key).GetDouble(), Is.EqualTo(d.Value.GetProperty(key).GetDouble()).Within(tolerance),
                        $"step {a[i].GetProperty("step")} {d.Name} {key}");
            }
        // The train.log lines carry the same NLL, BLEU and chrF as one process's, at the precision they are printed with
        // (perplexities in the thousands show the last digit of float rounding; the time is the machine's).
        static List<string> Lines(string dir) => File.ReadAllLines(Path.Combine(dir, "train.log")).Where(l => l.Contains("] valid "))
            .Select(l => System.Text.RegularExpressions.Regex.Replace(l[l.IndexOf("] valid ", StringComparison.Ordinal)..], @"ppl \S+ |\(\d+\.\d s\)$", ""))
            .ToList();
        Assert.That(Lines(output), Is.EqualTo(Lines(single)));
    }

    [Test]
    public void AConfigThatFailsOnTwoRanksOnly_EveryRankExitsTwoWithTheLineConfigValidateGives()
    {
        // 200 tokens per step fit data.max_len 128 on one process; on two, each micro-batch gets 100.
        var output = Path.Combine(root, "rejected");
        var tiny = Path.Combine(CliRunner.RepoRoot, "configs", "m3-tiny.yaml");
        Assert.That(CliRunner.Run("config", "validate", tiny, "--set", "train.tokens_per_batch=200").Code, Is.EqualTo(0));
        var expected = CliRunner.Run("config", "validate", tiny, "--ranks", "2", "--set", "train.tokens_per_batch=200").Err.TrimEnd();
        Assert.That(expected, Does.StartWith("--set train.tokens_per_batch=200: train.tokens_per_batch: 200 / (train.grad_accumulation 1 x 2 processes) = 100"));

        var (code, text) = Launch(2, output, "train", "--set", "train.tokens_per_batch=200");
        Assert.That(code, Is.EqualTo(2), text);
        Assert.That(text.Split('\n').Count(l => l.EndsWith(expected, StringComparison.Ordinal)), Is.EqualTo(2), text);
        Assert.That(Directory.Exists(output), Is.False, "nothing written");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    [Test, Platform("Linux")] // SIGUSR1 is 10 on Linux
    public void Sigusr1ToMpirunStopsBothRanksAfterTheSameStepWithACheckpoint()
    {
        var output = Path.Combine(root, "usr1");
        bool sent = false;
        var (code, text) = Launch(2, output, pid =>
        {
            // Once a few steps are logged, as a user or Slurm (--signal=USR1@180) would: mpirun forwards it to both ranks.
            if (sent || !File.Exists(Path.Combine(output, "metrics.jsonl"))) return;
            if (File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Count(l => l.EndsWith('}')) < 3) return;
            Assert.That(kill(pid, 10), Is.EqualTo(0), "kill -USR1 mpirun");
            sent = true;
        }, "train", "--set", "train.max_steps=400", "--set", "train.tokens_per_batch=512", "--set", "train.threads=1",
            "--set", "train.log_interval=1", "--set", "train.save_interval=0");
        Assert.That(sent, Is.True, text);
        Assert.That(code, Is.EqualTo(0), text);
        var stopped = System.Text.RegularExpressions.Regex.Match(File.ReadAllText(Path.Combine(output, "train.log")),
            @"interrupted at step (\d+); checkpoint saved");
        Assert.That(stopped.Success, Is.True, "rank 0 stops early and saves");
        int step = int.Parse(stopped.Groups[1].Value);
        Assert.That(step, Is.LessThan(400));
        Assert.That(File.ReadAllText(Path.Combine(output, "train.rank1.log")), Does.Contain($"interrupted at step {step}; checkpoint saved"),
            "rank 1 stops after the same step");
        Assert.That(Directory.Exists(Path.Combine(output, "checkpoints", $"step-{step:D7}")), Is.True);
        Assert.That(Losses(output), Has.Count.EqualTo(step), "every step up to the stop is logged once");
    }
}
