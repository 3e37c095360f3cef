using System.CommandLine;
using Serilog;
using Serilog.Events;
using TorchSharp;
using ZCode.Cli.Ui;
using ZCode.Config;
using ZCode.Data;
using ZCode.Model;
using ZCode.Parallel;
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
            parse.GetValue(output), new StartFrom(parse.GetValue(resume) ?? "never", parse.GetValue(initFrom)),
            parse.InvocationConfiguration.Output, cancel)));
        return cmd;
    }

    private static int Run(string? configFile, string[] sets, string? outputDir, StartFrom start, TextWriter stdout, CancellationToken cancel)
    {
        var cfg = CommonOptions.LoadConfig(configFile, sets);
        start.AdoptModel(cfg);
        // Every config error, before a process group is formed or anything is written.
        var environment = RunEnvironment.Current();
        ConfigValidator.ValidateRun(cfg, RunChecks.All, environment);
        var launch = environment.Launch;
        var device = LocalDevice(ZCode.Runtime.ComputeDevice.Resolve(cfg.Train.Device), cfg.Train.Device, launch);
        var dtype = ZCode.Runtime.ComputeDevice.Dtype(cfg.Train.Dtype);
        bool cuda = device.type == DeviceType.CUDA;
        using var layout = ParallelLayout.Create(Communicators.Create(cfg.Parallel, cuda, gpu: cuda && device.index >= 0 ? device.index : null),
            cfg.Parallel.ExpertParallel, ownsWorld: true);
        var world = layout.World;
        bool rank0 = world.Rank == 0;
        outputDir ??= DefaultOutput(world);
        var warnings = new List<string>();
        var plan = start.Resolve(outputDir, warnings.Add);
        Directory.CreateDirectory(outputDir);

        using var observer = rank0 ? new ConsoleTrainingObserver() : null;
        var logConfig = new LoggerConfiguration().MinimumLevel.Debug();
        const string fileTemplate = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level:u3}] {Message:lj}{NewLine}{Exception}";
        // Rank 0 owns the console and train.log; every other rank keeps its own train.rank{R}.log for diagnosis.
        if (rank0)
            logConfig = logConfig
                .WriteTo.File(Path.Combine(outputDir, "train.log"), outputTemplate: fileTemplate)
                // On a terminal the live progress bar replaces routine lines (warnings still show); redirected output
                // (CI, files) gets every log line instead.
                .WriteTo.Console(restrictedToMinimumLevel: observer!.Interactive ? LogEventLevel.Warning : LogEventLevel.Information,
                                 standardErrorFromLevel: LogEventLevel.Warning,
                                 outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}");
        else
            logConfig = logConfig.WriteTo.File(Path.Combine(outputDir, $"train.rank{world.Rank}.log"), outputTemplate: fileTemplate);
        using var log = logConfig.CreateLogger();

        // train.threads 0 = the cores of this node shared among the ranks on it.
        torch.set_num_threads(cfg.Train.Threads > 0 ? cfg.Train.Threads : Math.Max(1, Environment.ProcessorCount / Math.Max(1, launch.LocalSize)));
        torch.manual_seed(cfg.Train.Seed);

        // Training reads only the shards; the first run (or changed inputs) prepares them here: rank 0 alone, while
        // the others wait, then they open the shards it wrote.
        DataSource data;
        if (rank0)
        {
            var prepareProgress = new PrepareProgressPrinter(stdout);
            try
            {
                data = DataSource.FromShards(cfg, prepareProgress, p => log.Information(p.UpToDate
                    ? "data: shards up to date in {Index}" : "data: prepared shards in {Index} ({Lines} lines, {Seconds:F1} s)",
                    p.IndexPath, p.Lines, p.Seconds), layout.DataParallel);
            }
            finally { prepareProgress.Finish(); }
            world.Barrier();
        }
        else
        {
            world.Barrier();
            data = DataSource.FromShards(cfg, dataParallel: layout.DataParallel);
        }
        if (data.Tokenizer.VocabSize != cfg.Model.VocabSize)
            throw new InvalidOperationException($"model.vocab_size {cfg.Model.VocabSize} != {data.Tokenizer.VocabSize} pieces was not validated");
        foreach (var c in data.Corpora)
            log.Information("corpus {Key}: {Kept} of {Lines} lines kept ({Empty} empty, {Long} too long)",
                c.Key, c.Kept, c.Lines, c.SkippedEmpty, c.SkippedTooLong);
        // Every rank builds the same initial weights from train.seed (its block of experts under expert parallelism), so
        // no broadcast is needed.
        var model = new Seq2SeqTransformer(cfg.Model, data.Tokenizer.PadId, layout.ModelExpertGroup);
        model.ComputeDtype = dtype;
        MoeSeeding.Apply(model, cfg.Train.Seed);
        log.Information("output directory {Dir}", Path.GetFullPath(outputDir));
        if (world.Size > 1)
            log.Information("rank {Rank} of {World} ({Backend}, launcher {Launcher}); micro-batch budget {Budget} tokens",
                world.Rank, world.Size, world.Backend, launch.Launcher, DataSource.MicroBatchTokens(cfg.Train, layout.DataParallel));
        foreach (var w in warnings)
            log.Warning("{Warning}", w);
        if (plan.InitFrom is not null)
        {
            ZCode.Checkpoints.CheckpointLoader.LoadWeights(plan.InitFrom, model);
            log.Information("initialised weights from {Dir} (step 0, fresh optimizer)", plan.InitFrom);
        }
        // The parameters move once, before the trainer creates the optimizer state next to them.
        if (device.type != DeviceType.CPU)
            model.to(device);
        log.Information("device {Device}", ZCode.Runtime.ComputeDevice.Describe(device, dtype));
        if (ZCode.Runtime.LibTorchLoader.LoadedFrom is { } libtorch)
            log.Information("LibTorch from {Dir} (ZCODE_LIBTORCH)", libtorch);

        // Ctrl-C (one process) or SIGUSR1 (any number of ranks) asks the loop to stop after the current step; the
        // trainer then saves a checkpoint. Under mpirun Ctrl-C tears the job down, but mpirun and srun forward SIGUSR1
        // to every rank (Slurm sends it ahead of the time limit with --signal=USR1@180), and the trainer makes the
        // ranks agree on the step.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel, StopSignal.Token);
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; stop.Cancel(); };
        if (world.Size == 1)
            Console.CancelKeyPress += onCancel;
        try
        {
            // Batches are built on a background thread (exact sampler state kept) so the step never waits for them.
            using var batches = new PrefetchingBatchStream(data.Train);
            var trainer = new Trainer(cfg, model, batches, outputDir, log, observer ?? (ITrainingObserver)new SilentTrainingObserver(),
                layout: layout, device: device);
            if (plan.ResumeFrom is not null)
                trainer.Restore(plan.ResumeFrom);
            trainer.Run(stop.Token);
        }
        finally
        {
            if (world.Size == 1)
                Console.CancelKeyPress -= onCancel;
        }
        return CliApp.ExitOk;
    }

    /// <summary>
    /// Several ranks on one node each take their own GPU: with train.device auto or cuda, local rank i uses cuda:i
    /// (an explicit cuda:N is kept, for a launcher that sets CUDA_VISIBLE_DEVICES per rank).
    /// </summary>
    private static torch.Device LocalDevice(torch.Device resolved, string setting, LaunchEnvironment launch)
    {
        if (resolved.type != DeviceType.CUDA || launch.LocalSize <= 1 || setting is not ("auto" or "cuda"))
            return resolved;
        if (launch.LocalRank >= torch.cuda.device_count())
            throw new InvalidOperationException($"local rank {launch.LocalRank} has no GPU: the config validator checks train.device");
        return new torch.Device(DeviceType.CUDA, launch.LocalRank);
    }

    /// <summary>runs/&lt;timestamp&gt;, with rank 0's clock on every rank.</summary>
    private static string DefaultOutput(ICommunicator world)
    {
        long stamp = HostCollectives.Broadcast(world, long.Parse(DateTime.Now.ToString("yyyyMMddHHmmss")), 0);
        var s = stamp.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Path.Combine("runs", $"{s[..8]}-{s[8..]}");
    }
}
