using Spectre.Console;
using ZCode.Training;

namespace ZCode.Cli.Ui;

/// <summary>
/// Live progress for people: a Spectre.Console bar with step, loss, tokens/s and ETA on an interactive terminal;
/// a plain line per logged step when output is redirected (CI, files), so logs stay readable.
/// </summary>
internal sealed class ConsoleTrainingObserver : ITrainingObserver, IDisposable
{
    private readonly bool interactive;
    private readonly TextWriter plain;
    private ProgressTask? task;
    private Task? progressLoop;
    private readonly TaskCompletionSource done = new();
    private readonly TaskCompletionSource<ProgressTask> started = new();
    private int startStep;

    public ConsoleTrainingObserver(TextWriter plainOutput)
    {
        plain = plainOutput;
        interactive = AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;
    }

    public void OnStart(int startStep, int maxSteps)
    {
        this.startStep = startStep;
        if (!interactive)
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

    public void OnStep(StepMetrics m, bool logged)
    {
        if (task is not null)
        {
            task.Description = $"step {m.Step}/{m.MaxSteps}  loss {m.Loss:F3}  {m.TokensPerSecond:N0} tok/s  aux {m.AuxLoss:F3}";
            task.Value = m.Step;
            return;
        }
        if (logged)
        {
            double perStep = m.ElapsedSeconds / Math.Max(1, m.Step - startStep);
            var eta = TimeSpan.FromSeconds(perStep * (m.MaxSteps - m.Step));
            plain.WriteLine($"step {m.Step,6}/{m.MaxSteps}  loss {m.Loss:F4}  nll {m.NllLoss:F4}  lr {m.Lr:E2}  " +
                            $"{m.TokensPerSecond,8:N0} tok/s  aux {m.AuxLoss:F4}  gnorm {m.GradNorm:F3}  " +
                            $"dropped {m.DroppedFraction:P1}  eta {eta:hh\\:mm\\:ss}");
        }
    }

    public void OnCheckpoint(int step, string directory)
    {
        if (task is null)
            plain.WriteLine($"checkpoint: {directory}");
    }

    public void OnFinish(int step, bool interrupted)
    {
        Dispose();
        plain.WriteLine(interrupted ? $"interrupted at step {step}; checkpoint saved" : $"finished at step {step}");
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
