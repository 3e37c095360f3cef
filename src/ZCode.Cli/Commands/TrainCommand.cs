using System.CommandLine;
using Serilog;
using Serilog.Events;
using TorchSharp;
using ZCode.Cli.Ui;
using ZCode.Config;
using ZCode.Data;
using ZCode.Model;
using ZCode.Training;

namespace ZCode.Cli.Commands;

/// <summary>`zcode train`: single-process training from a config (embedded m3-tiny on data-samples/ by default).</summary>
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
        outputDir ??= Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss"));
        var warnings = new List<string>();
        var plan = start.Resolve(cfg, outputDir, warnings.Add);
        RejectUnavailableFeatures(cfg);
        // Before any file is written: a CUDA device on a machine without one is a configuration error.
        var device = ZCode.Runtime.ComputeDevice.Resolve(cfg.Train.Device);
        var dtype = ZCode.Runtime.ComputeDevice.Dtype(cfg.Train.Dtype);
        Directory.CreateDirectory(outputDir);

        using var observer = new ConsoleTrainingObserver();
        using var log = new LoggerConfiguration()
            .MinimumLevel.Debug()
            .WriteTo.File(Path.Combine(outputDir, "train.log"), outputTemplate: "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level:u3}] {Message:lj}{NewLine}{Exception}")
            // On a terminal the live progress bar replaces routine lines (warnings still show); redirected output
            // (CI, files) gets every log line instead.
            .WriteTo.Console(restrictedToMinimumLevel: observer.Interactive ? LogEventLevel.Warning : LogEventLevel.Information,
                             standardErrorFromLevel: LogEventLevel.Warning,
                             outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}")
            .CreateLogger();

        torch.set_num_threads(cfg.Train.Threads > 0 ? cfg.Train.Threads : Environment.ProcessorCount);
        torch.manual_seed(cfg.Train.Seed);

        // Training reads only the shards; the first run (or changed inputs) prepares them here.
        var prepareProgress = new PrepareProgressPrinter(stdout);
        DataSource data;
        try
        {
            data = DataSource.FromShards(cfg, prepareProgress, p => log.Information(p.UpToDate
                ? "data: shards up to date in {Index}" : "data: prepared shards in {Index} ({Lines} lines, {Seconds:F1} s)",
                p.IndexPath, p.Lines, p.Seconds));
        }
        finally { prepareProgress.Finish(); }
        if (data.Tokenizer.VocabSize != cfg.Model.VocabSize)
            throw new UserInputException($"model.vocab_size is {cfg.Model.VocabSize} but {cfg.ResolvePath(cfg.Data.SpmModel)} has " +
                                         $"{data.Tokenizer.VocabSize} pieces; set model.vocab_size: {data.Tokenizer.VocabSize}");
        foreach (var c in data.Corpora)
            log.Information("corpus {Key}: {Kept} of {Lines} lines kept ({Empty} empty, {Long} too long)",
                c.Key, c.Kept, c.Lines, c.SkippedEmpty, c.SkippedTooLong);
        var model = new Seq2SeqTransformer(cfg.Model, data.Tokenizer.PadId);
        model.ComputeDtype = dtype;
        MoeSeeding.Apply(model, cfg.Train.Seed);
        log.Information("output directory {Dir}", Path.GetFullPath(outputDir));
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

        // Ctrl-C asks the loop to stop after the current step; the trainer then saves a checkpoint.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; stop.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            // Batches are built on a background thread (exact sampler state kept) so the step never waits for them.
            using var batches = new PrefetchingBatchStream(data.Train);
            var trainer = new Trainer(cfg, model, batches, outputDir, log, observer, device);
            if (plan.ResumeFrom is not null)
                trainer.Restore(plan.ResumeFrom);
            trainer.Run(stop.Token);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        return CliApp.ExitOk;
    }

    // Settings the schema already describes but this build cannot train with yet: refuse them clearly rather
    // than silently training something else.
    private static void RejectUnavailableFeatures(ZCodeConfig cfg)
    {
        if (cfg.Parallel.Backend is not ("auto" or "local"))
            throw new UserInputException($"parallel.backend: '{cfg.Parallel.Backend}' is not available in this version; use auto or local (one process)");
        if (cfg.Parallel.ExpertParallel != 1)
            throw new UserInputException("parallel.expert_parallel: a single process holds every expert; set it to 1");
        if (cfg.Parallel.ZeroStage != 0 || cfg.Parallel.OffloadOptimizer)
            throw new UserInputException("parallel.zero_stage / parallel.offload_optimizer: ZeRO is not available in this version; use 0 / false");
    }
}
