using Spectre.Console;
using ZCode.Data.Shards;

namespace ZCode.Cli.Ui;

/// <summary>
/// Progress of <c>data prepare</c>: one in-place Spectre line on an interactive terminal, otherwise a plain log line
/// every few seconds (so CI logs and files stay readable).
/// </summary>
internal sealed class PrepareProgressPrinter(TextWriter output) : IProgress<PrepareProgress>
{
    private readonly bool _interactive = AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;
    private double _lastLog = double.NegativeInfinity;
    private bool _wroteInPlace;

    public void Report(PrepareProgress p)
    {
        var line = $"{Path.GetFileName(p.File)} ({p.FileIndex + 1}/{p.FileCount}): {p.Lines:N0} lines, " +
                   $"{p.Bytes / 1048576.0:F1}/{p.TotalBytes / 1048576.0:F1} MiB, {p.LinesPerSecond:N0} lines/s";
        if (_interactive)
        {
            AnsiConsole.Write(new Spectre.Console.Text("\r" + line.PadRight(Math.Max(0, Console.WindowWidth - 1))));
            _wroteInPlace = true;
        }
        else if (p.Seconds - _lastLog >= 5)
        {
            output.WriteLine($"[{DateTime.Now:HH:mm:ss} INF] prepare {line}");
            _lastLog = p.Seconds;
        }
    }

    /// <summary>Ends the in-place line.</summary>
    public void Finish()
    {
        if (_wroteInPlace) AnsiConsole.WriteLine();
        _wroteInPlace = false;
    }
}
