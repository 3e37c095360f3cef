using System.Diagnostics;
using System.Text;
using System.Text.Json;
using ZCode.Tests.Data;

namespace ZCode.Tests.Cli;

/// <summary>
/// <c>zcode</c> as a child process, for what an in-process run cannot show: SIGKILL, and several runs started at once.
/// Runs the test build's zcode.dll from the repository root and keeps its stderr.
/// </summary>
internal sealed class ZcodeProcess : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder stderr = new();
    private readonly Stopwatch clock = Stopwatch.StartNew();

    private ZcodeProcess(Process process) => this.process = process;

    public static ZcodeProcess Start(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = DataTestPaths.RepoRoot,
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(TestContext.CurrentContext.TestDirectory, "zcode.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = new ZcodeProcess(new Process { StartInfo = psi, EnableRaisingEvents = true });
        p.process.Exited += (_, _) => p.clock.Stop();
        p.process.Start();
        p.clock.Restart();
        p.process.OutputDataReceived += (_, _) => { };
        p.process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (p.stderr) p.stderr.AppendLine(e.Data);
        };
        p.process.BeginOutputReadLine();
        p.process.BeginErrorReadLine();
        return p;
    }

    public int Id => process.Id;
    public bool HasExited => process.HasExited;
    public int ExitCode => process.ExitCode;
    /// <summary>Time from the start to the exit (or to now while it runs).</summary>
    public TimeSpan Elapsed => clock.Elapsed;

    public string Stderr
    {
        get { lock (stderr) return stderr.ToString(); }
    }

    /// <summary>Waits for the exit and for the rest of its output.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!process.WaitForExit(timeout)) return false;
        process.WaitForExit();
        return true;
    }

    public void WaitForExit() => process.WaitForExit();

    /// <summary>SIGKILL: no handler runs, nothing is saved.</summary>
    public void Kill() => process.Kill();

    /// <summary>Waits (up to 5 minutes) for a run to end and checks it exited with 0.</summary>
    public static void RunToEnd(string output, IEnumerable<string> args)
    {
        using var p = Start(args);
        Assert.That(p.WaitForExit(TimeSpan.FromMinutes(5)), Is.True, "training did not finish");
        Assert.That(p.ExitCode, Is.EqualTo(0), p.Stderr + (File.Exists(Path.Combine(output, "train.log")) ? File.ReadAllText(Path.Combine(output, "train.log")) : ""));
    }

    public static List<JsonElement> Metrics(string output) => File.ReadAllLines(Path.Combine(output, "metrics.jsonl"))
        .Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    /// <summary>The newest step in a run's metrics.jsonl (0 before the first), read while the run may be writing it.</summary>
    public static long LastLoggedStep(string output)
    {
        try
        {
            return File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Where(l => l.EndsWith('}'))
                .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).DefaultIfEmpty(0).Max();
        }
        catch (IOException) { return 0; }
    }

    public void Dispose()
    {
        if (!process.HasExited) process.Kill();
        process.Dispose();
    }
}
