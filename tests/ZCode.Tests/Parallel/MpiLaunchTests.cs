using System.Diagnostics;
using System.Text.Json;
using ZCode.Benchmarks;

namespace ZCode.Tests.Parallel;

/// <summary>
/// The mpi backend end to end: `mpirun -np N zcode bench comm` on the built CLI, which verifies every collective on
/// every rank, and the failure paths (a rank that raises, stalls, or is SIGKILLed) ending the whole job with a
/// non-zero exit and the failure named. Needs Open MPI: scripts/setup installs it (scripts/test runs setup first).
/// </summary>
[NonParallelizable]
public class MpiLaunchTests
{
    private static string Mpirun()
    {
        var found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);
        if (found is null)
            Assert.Fail("mpirun not found: the mpi backend tests need Open MPI; run scripts/setup (installs openmpi-bin libopenmpi-dev)");
        return found!;
    }

    /// <summary>Runs the test directory's zcode.dll on <paramref name="ranks"/> ranks; kills it after 180 s.</summary>
    private static (int Code, string Output, double Seconds) Run(int ranks, params string[] args)
    {
        var psi = new ProcessStartInfo(Mpirun())
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = TestContext.CurrentContext.TestDirectory,
        };
        // Root in containers/CI needs the two ALLOW variables; --oversubscribe lets 3 ranks share 2 cores.
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        foreach (var a in new[] { "--oversubscribe", "-np", ranks.ToString(), "dotnet",
                     Path.Combine(TestContext.CurrentContext.TestDirectory, "zcode.dll") }.Concat(args))
            psi.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(180_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"mpirun {string.Join(' ', args)} did not finish in 180 s");
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result, clock.Elapsed.TotalSeconds);
    }

    private static JsonElement Report(string output)
    {
        var line = output.Split('\n').FirstOrDefault(l => l.Contains("{\"backend\""))
                   ?? throw new AssertionException($"no JSON report in:\n{output}");
        return JsonDocument.Parse(line[line.IndexOf('{')..]).RootElement;
    }

    private static void AssertAllVerified(JsonElement report, int ranks)
    {
        Assert.That(report.GetProperty("backend").GetString(), Is.EqualTo("mpi"));
        Assert.That(report.GetProperty("ranks").GetInt32(), Is.EqualTo(ranks));
        var rows = report.GetProperty("collectives").EnumerateArray().ToList();
        Assert.That(rows.Select(r => r.GetProperty("name").GetString()), Is.EqualTo(CommBenchmark.Collectives));
        Assert.That(rows.Select(r => r.GetProperty("verified").GetBoolean()), Is.All.True);
    }

    [Test]
    public void TwoRanks_VerifyEveryCollective()
    {
        var (code, output, _) = Run(2, "bench", "comm", "--size-mb", "0.25", "--iters", "2", "--json");
        Assert.That(code, Is.EqualTo(0), output);
        AssertAllVerified(Report(output), 2);
    }

    [Test]
    public void ThreeRanks_Bfloat16_ChunkedPastTheMpiCountLimit_Verify()
    {
        // --max-chunk 1000 sends every transfer through the path taken by counts over 2^31-1.
        var (code, output, _) = Run(3, "bench", "comm", "--size-mb", "0.1", "--iters", "1", "--dtype", "bfloat16",
            "--max-chunk", "1000", "--json");
        Assert.That(code, Is.EqualTo(0), output);
        AssertAllVerified(Report(output), 3);
    }

    [Test]
    public void ARankThatRaises_EndsTheJobAtOnce_NamingIt()
    {
        var (code, output, seconds) = Run(2, "bench", "comm", "--size-mb", "0.05", "--iters", "1", "--fail-rank", "1",
            "--set", "parallel.timeout_s=300");
        Assert.That(code, Is.Not.EqualTo(0), output);
        Assert.That(output, Does.Contain("zcode: rank 1: error: bench comm: simulated failure after all-reduce"));
        Assert.That(seconds, Is.LessThan(90), "MPI_Abort ends the job long before the 300 s collective timeout");
    }

    [Test]
    public void AStalledRank_MakesTheOthersTimeOut_NamingTheirRankAndTheLimit()
    {
        var (code, output, _) = Run(2, "bench", "comm", "--size-mb", "0.05", "--iters", "1", "--fail-rank", "1",
            "--fail-mode", "stall", "--set", "parallel.timeout_s=3");
        Assert.That(code, Is.Not.EqualTo(0), output);
        // Normally reduce-scatter (rank 1 stalls after all-reduce); on a very loaded machine rank 1 may already be
        // later than 3 s for the first collective, which is the same failure seen earlier.
        Assert.That(output, Does.Match(@"zcode: rank 0: error: [a-z-]+ timed out after 3 s on rank 0 \(backend mpi\)"));
    }

    [Test]
    public void AKilledRank_EndsTheJob_NamingIt()
    {
        var (code, output, seconds) = Run(2, "bench", "comm", "--size-mb", "0.05", "--iters", "1", "--fail-rank", "1",
            "--fail-mode", "kill", "--set", "parallel.timeout_s=300");
        Assert.That(code, Is.Not.EqualTo(0), output);
        Assert.That(output, Does.Contain("rank 1").And.Contain("signal 9"));
        Assert.That(seconds, Is.LessThan(90), "mpirun ends the job long before the 300 s collective timeout");
    }
}
