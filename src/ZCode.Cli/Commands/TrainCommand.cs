using System.CommandLine;
using Serilog;
using Serilog.Events;
using ZCode.Cli.Ui;
using ZCode.Training;

namespace ZCode.Cli.Commands;

/// <summary>`zcode train`: training from a config (embedded m3-tiny on data-samples/ by default), in one process or in
/// every process of an mpirun/srun launch (data parallel, ZeRO). Rank 0 prints and writes the shared files.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var config = CommonOptions.ConfigOption();
        var sets = CommonOptions.SetOption();
        var output = new Option<string?>("--output") { Description = "run directory (default: runs/<timestamp>)" };
        var resume = new Option<string>("--resume")
        {
            Description = "auto (newest valid checkpoint in --output, else start fresh) | never (refuse a directory with checkpoints) | a checkpoint path",
            DefaultValueFactory = _ => "never",
        };
        var initFrom = new Option<string?>("--init-from") { Description = "start a new run (step 0, fresh optimizer) from a checkpoint's weights and model config" };
        var cmd = new Command("train", "Train a Mixture-of-Experts encoder-decoder") { config, sets, output, resume, initFrom };
        cmd.SetAction((parse, cancel) => Task.FromResult(Run(parse.GetValue(config), parse.GetValue(sets) ?? [],
            parse.GetValue(output), new RunStart(parse.GetValue(resume) ?? "never", parse.GetValue(initFrom)),
            parse.InvocationConfiguration.Output, cancel)));
        return cmd;
    }

    private static int Run(string? configFile, string[] sets, string? outputDir, RunStart start, TextWriter stdout, CancellationToken cancel)
    {
        var cfg = CommonOptions.LoadConfig(configFile, sets);
        using var session = TrainingSession.Open(cfg, new TrainingSessionOptions { OutputDir = outputDir, Start = start });
        Directory.CreateDirectory(session.OutputDir);
        using var observer = session.IsRank0 ? new ConsoleTrainingObserver() : null;
        using var log = CreateLog(session, observer);

        var prepareProgress = session.IsRank0 ? new PrepareProgressPrinter(stdout) : null;
        Trainer trainer;
        try
        {
            trainer = session.Build(log, observer ?? (ITrainingObserver)new SilentTrainingObserver(), prepareProgress);
        }
        finally { prepareProgress?.Finish(); }

        // Ctrl-C (one process) or SIGUSR1 (any number of ranks) asks the loop to stop after the current step; the
        // trainer then saves a checkpoint. Under mpirun Ctrl-C tears the job down, but mpirun and srun forward SIGUSR1
        // to every rank (Slurm sends it ahead of the time limit with --signal=USR1@180), and the trainer makes the
        // ranks agree on the step.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel, StopSignal.Token);
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; stop.Cancel(); };
        bool single = session.World.Size == 1;
        if (single)
            Console.CancelKeyPress += onCancel;
        try
        {
            trainer.Run(stop.Token);
        }
        finally
        {
            if (single)
                Console.CancelKeyPress -= onCancel;
        }
        return CliApp.ExitOk;
    }

    /// <summary>Rank 0 owns the console and train.log; every other rank keeps its own train.rank{R}.log for diagnosis.</summary>
    private static Serilog.Core.Logger CreateLog(TrainingSession session, ConsoleTrainingObserver? observer)
    {
        var logConfig = new LoggerConfiguration().MinimumLevel.Debug();
        const string fileTemplate = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level:u3}] {Message:lj}{NewLine}{Exception}";
        if (session.IsRank0)
            logConfig = logConfig
                .WriteTo.File(Path.Combine(session.OutputDir, "train.log"), outputTemplate: fileTemplate)
                // On a terminal the live progress bar replaces routine lines (warnings still show); redirected output
                // (CI, files) gets every log line instead.
                .WriteTo.Console(restrictedToMinimumLevel: observer!.Interactive ? LogEventLevel.Warning : LogEventLevel.Information,
                                 standardErrorFromLevel: LogEventLevel.Warning,
                                 outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}");
        else
            logConfig = logConfig.WriteTo.File(Path.Combine(session.OutputDir, $"train.rank{session.World.Rank}.log"), outputTemplate: fileTemplate);
        return logConfig.CreateLogger();
    }
}
