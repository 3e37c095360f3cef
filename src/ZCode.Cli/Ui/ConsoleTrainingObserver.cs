using Spectre.Console;
using ZCode.Training;

namespace ZCode.Cli.Ui;

/// <summary>
/// Live progress for people on an interactive terminal: a Spectre.Console bar with step, loss, tokens/s, elapsed
/// time and ETA. When output is redirected it stays silent and the Serilog console lines carry the progress.
/// </summary>
internal sealed class ConsoleTrainingObserver : ITrainingObserver, IDisposable
{
    private ProgressTask? task;
    private Task? progressLoop;
    private readonly TaskCompletionSource done = new();
    private readonly TaskCompletionSource<ProgressTask> started = new();

    public bool Interactive { get; } = AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;

    public void OnStart(int startStep, int maxSteps)
    {
        if (!Interactive)
            return;
        progressLoop = AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                     new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var t = ctx.AddTask("train", maxValue: maxSteps);
                t.Value = startStep;
                started.SetResult(t);
                await done.Task;
            });
        task = started.Task.GetAwaiter().GetResult();
    }

    private string lastLosses = "loss -";

    public void OnStep(StepMetrics m, bool logged)
    {
        if (task is null)
            return;
        // Losses are read from the device on logged steps only; in between the bar keeps the last logged values.
        if (logged)
            lastLosses = $"loss {m.Loss:F3}  aux {m.AuxLoss:F3}";
        task.Description = $"step {m.Step}/{m.MaxSteps}  {lastLosses}  {m.TokensPerSecond:N0} tok/s";
        task.Value = m.Step;
    }

    public void OnCheckpoint(int step, string directory)
    {
        if (task is not null)
            task.Description = $"step {step}: saved {Path.GetFileName(directory)}";
    }

    public void OnFinish(int step, bool interrupted)
    {
        Dispose();
        if (Interactive)
            AnsiConsole.MarkupLine(interrupted ? $"interrupted at step {step}; checkpoint saved" : $"finished at step {step}");
    }

    public void Dispose()
    {
        if (progressLoop is null)
            return;
        done.TrySetResult();
        progressLoop.GetAwaiter().GetResult();
        progressLoop = null;
        task = null;
    }
}
