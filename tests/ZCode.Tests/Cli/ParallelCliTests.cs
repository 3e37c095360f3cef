using System.Diagnostics;
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
        "--set", "train.log_interval=1", "--set", "train.save_interval=5", .. extra,
    ];

    private static (int Code, string Output) Launch(int ranks, string output, params string[] args)
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
        if (!p.WaitForExit(TimeSpan.FromMinutes(4)))
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
}
