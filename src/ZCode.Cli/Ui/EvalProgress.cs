using Spectre.Console;

namespace ZCode.Cli.Ui;

/// <summary>
/// Progress of `zcode eval`, per direction: a Spectre.Console bar on an interactive terminal; otherwise one log line
/// on stderr when a direction starts and when it is scored (stdout keeps only the table).
/// </summary>
internal sealed class EvalProgress : IDisposable
{
    private readonly TextWriter log;
    private readonly TaskCompletionSource done = new();
    private readonly TaskCompletionSource<ProgressContext> started = new();
    private readonly Task? loop;
    private readonly ProgressContext? context;
    private ProgressTask? current;

    public EvalProgress(TextWriter log)
    {
        this.log = log;
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected || Console.IsErrorRedirected)
            return;
        loop = AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                started.SetResult(ctx);
                await done.Task;
            });
        context = started.Task.GetAwaiter().GetResult();
    }

    /// <summary>A direction starts: a new bar, or a log line.</summary>
    public void Start(string direction, int sentences)
    {
        if (context is not null)
            current = context.AddTask(direction, maxValue: Math.Max(1, sentences));
        else
            log.WriteLine($"[{DateTime.Now:HH:mm:ss} INF] eval {direction}: translating {sentences} sentences");
    }

    /// <summary>Sentences decoded so far in the current direction.</summary>
    public void Advance(int done)
    {
        if (current is not null) current.Value = done;
    }

    /// <summary>A direction is scored.</summary>
    public void Finish(string direction, string summary)
    {
        if (current is not null)
        {
            current.Description = $"{direction}  {summary}";
            current.Value = current.MaxValue;
            current.StopTask();
        }
        else
            log.WriteLine($"[{DateTime.Now:HH:mm:ss} INF] eval {direction}: {summary}");
    }

    public void Dispose()
    {
        done.TrySetResult();
        loop?.GetAwaiter().GetResult();
    }
}
