using Spectre.Console;
using ZCode.Config;
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
        var line = p.Describe();
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

    /// <summary>
    /// Checks the data section (a checkpoint's config may name files that are gone), prepares the shards of
    /// <paramref name="config"/> when missing or stale, with this progress on <paramref name="output"/>, then says which
    /// it was in the words <c>zcode train</c> logs.
    /// </summary>
    public static PrepareResult Prepare(ZCodeConfig config, TextWriter output)
    {
        ConfigValidator.ValidateRun(config, RunChecks.Data);
        var printer = new PrepareProgressPrinter(output);
        PrepareResult result;
        try { result = DataPreparer.Prepare(config, printer); }
        finally { printer.Finish(); }
        output.WriteLine($"[{DateTime.Now:HH:mm:ss} INF] " + (result.UpToDate
            ? $"data: shards up to date in {result.IndexPath}"
            : $"data: prepared shards in {result.IndexPath} ({result.Lines} lines, {result.Seconds:F1} s)"));
        return result;
    }
}
