using System.Diagnostics;
using System.Text.Json;
using ZCode.Benchmarks;

namespace ZCode.Tests.Parallel;

/// <summary>
/// `zcode bench moe --expert-parallel`: the MoE layer with its experts split over the ranks, on the in-process group
/// and end to end under `mpirun -np 2` (mpi backend); in both the split layer's output must equal the replicated one's.
/// </summary>
[NonParallelizable]
public class ExpertParallelLaunchTests
{
    [Test]
    public void BenchmarkOnTwoInProcessRanks_SplitEqualsReplicated()
    {
        var results = new ExpertParallelMoeBenchResult[2];
        int threads = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(1);
        try
        {
            InProcessGroup.Run(2, comm =>
                results[comm.Rank] = ExpertParallelMoeBenchmark.Run(comm, new MoeBenchOptions(48, 8, 16, 4, 2, 1.0, Repeats: 1, Warmup: 0,
                    Priority: "random")));
        }
        finally
        {
            TorchSharp.torch.set_num_threads(threads);
        }
        Assert.That(results.Select(r => r.MaxAbsDiff), Is.All.LessThan(1e-5));
        Assert.That(results[0], Is.EqualTo(results[1]), "figures are reduced over the ranks, so every rank reports the same");
        Assert.That(results[0].Capacity, Is.EqualTo(24));                    // ceil(2 * 1.0 * 48 / 4), equal on both ranks
        Assert.That(results[0].AllToAllBytes, Is.EqualTo(4L * 24 * 8 * 4));
        Assert.That(results[0].MsExpertParallel, Is.GreaterThan(0));
    }

    [Test]
    public void WithoutAnMpiLaunch_ExitTwoSayingHowToStartIt()
    {
        var (code, _, stderr) = CliRunner.Run("bench", "moe", "--tokens", "8", "--d", "4", "--ffn", "8", "--experts", "4",
            "--top-k", "1", "--expert-parallel");
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain("--expert-parallel").And.Contain("mpirun -np P"));
    }

    [Test]
    public void UnderMpirunOnTwoRanks_SplitEqualsReplicated()
    {
        var mpirun = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);
        if (mpirun is null)
            Assert.Fail("mpirun not found: the mpi backend tests need Open MPI; run scripts/setup (installs openmpi-bin libopenmpi-dev)");
        var dir = TestContext.CurrentContext.TestDirectory;
        var psi = new ProcessStartInfo(mpirun!)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir,
        };
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        foreach (var a in new[] { "--oversubscribe", "-np", "2", "dotnet", Path.Combine(dir, "zcode.dll"), "bench", "moe",
                     "--expert-parallel", "--tokens", "96", "--d", "16", "--ffn", "32", "--experts", "8", "--top-k", "2",
                     "--capacity-factor", "1.0", "--repeats", "2", "--json" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(180_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("mpirun bench moe --expert-parallel did not finish in 180 s");
        }
        p.WaitForExit();
        var output = stdout.Result + stderr.Result;
        Assert.That(p.ExitCode, Is.EqualTo(0), output);
        var line = output.Split('\n').FirstOrDefault(l => l.Contains("{\"backend\""))
                   ?? throw new AssertionException($"no JSON report in:\n{output}");
        var r = JsonDocument.Parse(line[line.IndexOf('{')..]).RootElement;
        Assert.That(r.GetProperty("backend").GetString(), Is.EqualTo("mpi"));
        Assert.That(r.GetProperty("ranks").GetInt32(), Is.EqualTo(2));
        Assert.That(r.GetProperty("experts_per_rank").GetInt32(), Is.EqualTo(4));
        Assert.That(r.GetProperty("max_abs_diff").GetDouble(), Is.LessThan(1e-5));
        Assert.That(r.GetProperty("ms_expert_parallel").GetDouble(), Is.GreaterThan(0));
    }
}
