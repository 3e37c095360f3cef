using Serilog;
using TorchSharp;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Data;
using ZCode.Data.Shards;
using ZCode.Evaluation;
using ZCode.Evaluation.Metrics;
using ZCode.Model;
using ZCode.Model.Moe;
using ZCode.Parallel;
using ZCode.Runtime;
using ZCode.Training.Optimization;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>What a <see cref="TrainingSession"/> takes besides the config.</summary>
public sealed record TrainingSessionOptions
{
    /// <summary>The ranks of the run (the session does not own it); null creates the world from the launcher's
    /// environment and <c>parallel.backend</c>.</summary>
    public ICommunicator? World { get; init; }

    /// <summary>Run directory; null: runs/&lt;timestamp&gt; with rank 0's clock on every rank.</summary>
    public string? OutputDir { get; init; }

    /// <summary>Resume or initialise from a checkpoint (default: a fresh run into a directory without checkpoints).</summary>
    public RunStart Start { get; init; } = new();

    /// <summary>The optimizer's gradient bucket size (tests use small buckets to exercise bucketing).</summary>
    public long BucketBytes { get; init; } = AdamWOptimizer.DefaultBucketBytes;

    /// <summary>The run rules checked before anything starts (benchmarks on random tokens need no data checks).</summary>
    public RunChecks Checks { get; init; } = RunChecks.All;

    /// <summary>Whether rank 0 takes the output directory's <see cref="RunDirectoryLock"/> (off for a benchmark that
    /// writes nothing there).</summary>
    public bool LockOutput { get; init; } = true;
}

/// <summary>
/// One training run, assembled the same way for <c>zcode train</c>, <c>zcode bench train</c> and the tests: the
/// device and CPU threads, the process layout, the output directory and start plan (<see cref="Open"/>), then the
/// data (rank 0 prepares stale shards while the others wait), the model on its device with its MoE execution path,
/// the optimizer and the trainer (<see cref="Build"/>), restored from the checkpoint the plan names.
/// </summary>
public sealed class TrainingSession : IDisposable
{
    private readonly List<IDisposable> owned = [];

    private TrainingSession(ZCodeConfig config, LaunchEnvironment launch, ParallelLayout layout, Device device, string outputDir,
        StartPlan plan, IReadOnlyList<string> warnings, long bucketBytes)
    {
        Config = config;
        Launch = launch;
        Layout = layout;
        Device = device;
        OutputDir = outputDir;
        Plan = plan;
        Warnings = warnings;
        this.bucketBytes = bucketBytes;
    }

    private readonly long bucketBytes;

    public ZCodeConfig Config { get; }
    /// <summary>Where the launcher put this process (rank, local rank, launcher name).</summary>
    public LaunchEnvironment Launch { get; }
    public ParallelLayout Layout { get; }
    public ICommunicator World => Layout.World;
    public bool IsRank0 => World.Rank == 0;
    /// <summary>The device this rank trains on.</summary>
    public Device Device { get; }
    public ScalarType Dtype => ComputeDevice.Dtype(Config.Train.Dtype, Device);
    public string OutputDir { get; }
    public StartPlan Plan { get; }
    /// <summary>What resolving the start plan had to say (e.g. invalid checkpoints skipped), for the run's log.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The run's data (null when <see cref="Build(ILogger, ITrainingObserver, IBatchStream, int)"/> was given a stream).</summary>
    public DataSource? Data { get; private set; }
    public Seq2SeqTransformer? Model { get; private set; }
    public Trainer? Trainer { get; private set; }

    /// <summary>
    /// Validates the config (with the model of <c>--init-from</c>) against this launch, then resolves where and how the
    /// run happens, before anything is written: the device, CPU threads (train.threads 0: this node's cores shared
    /// among its ranks), the world and its groups, the output directory and whether the run resumes. Every rank calls it.
    /// </summary>
    public static TrainingSession Open(ZCodeConfig cfg, TrainingSessionOptions? options = null)
    {
        options ??= new TrainingSessionOptions();
        options.Start.AdoptModel(cfg);
        var environment = RunEnvironment.Current();
        // Given ranks (in-process tests) are checked as a launch of that many processes.
        ConfigValidator.ValidateRun(cfg, options.Checks, options.World is null ? environment : environment.WithRanks(options.World.Size));
        var launch = environment.Launch;
        var device = LocalDevice(ComputeDevice.Resolve(cfg.Train.Device), cfg.Train.Device, launch);
        bool cuda = device.type == DeviceType.CUDA;
        var world = options.World
                    ?? Communicators.Create(cfg.Parallel, cuda, gpu: cuda && device.index >= 0 ? device.index : null);
        ParallelLayout? layout = null;
        RunDirectoryLock? runLock = null;
        try
        {
            layout = ParallelLayout.Create(world, cfg.Parallel.ExpertParallel, ownsWorld: options.World is null);
            var outputDir = options.OutputDir ?? DefaultOutput(world);
            // One writer per run directory: locked before anything is written there (and before its checkpoints are
            // read), a refusal known to every rank. Held until the session is disposed or the process ends.
            if (options.LockOutput)
                runLock = RunDirectoryLock.AcquireOnRank0(world, outputDir);
            var warnings = new List<string>();
            var plan = options.Start.Resolve(outputDir, warnings.Add);
            torch.set_num_threads(cfg.Train.Threads > 0 ? cfg.Train.Threads : Math.Max(1, Environment.ProcessorCount / Math.Max(1, launch.LocalSize)));
            var session = new TrainingSession(cfg, launch, layout, device, outputDir, plan, warnings, options.BucketBytes);
            if (runLock is not null) session.owned.Add(runLock);
            return session;
        }
        catch
        {
            runLock?.Dispose();
            if (layout is not null) layout.Dispose();
            else if (options.World is null) world.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds the run on the config's prepared shards (rank 0 prepares them when missing or stale, reporting to
    /// <paramref name="prepareProgress"/>, while the other ranks wait), batches prefetched on a background thread.
    /// </summary>
    public Trainer Build(ILogger log, ITrainingObserver observer, IProgress<PrepareProgress>? prepareProgress = null)
    {
        PrepareResult prepared;
        Task<ShardCheckResult>? check = null;
        if (IsRank0)
        {
            prepared = DataPreparer.Prepare(Config, prepareProgress);
            log.Information(prepared.UpToDate ? "data: shards up to date in {Index}" : "data: prepared shards in {Index} ({Lines} lines, {Seconds:F1} s)",
                prepared.IndexPath, prepared.Lines, prepared.Seconds);
            // Rank 0 hashes the token shards from here on, while the data is opened and the model built; the first
            // step waits for the outcome (VerifiedBatchStream).
            var verifier = prepared.Verifier;
            if (ShardVerifier.ChecksContent)
                check = Task.Factory.StartNew(() => verifier.Check(verifier.TokenFiles()), TaskCreationOptions.LongRunning);
            World.Barrier();
        }
        else
        {
            World.Barrier();
            prepared = DataPreparer.Prepare(Config);
        }
        var data = DataSource.FromPrepared(Config, prepared, Layout.DataParallel);
        if (data.Tokenizer.VocabSize != Config.Model.VocabSize)
            throw new InvalidOperationException($"model.vocab_size {Config.Model.VocabSize} != {data.Tokenizer.VocabSize} pieces was not validated");
        foreach (var c in data.Corpora)
            log.Information("corpus {Key}: {Kept} of {Lines} lines kept ({Empty} empty, {Long} too long)",
                c.Key, c.Kept, c.Lines, c.SkippedEmpty, c.SkippedTooLong);
        Data = data;
        // Batches are built on a background thread (exact sampler state kept) so the step never waits for them.
        var batches = new PrefetchingBatchStream(data.Train);
        owned.Add(batches);
        return Build(log, observer, new VerifiedBatchStream(batches, World, data.Verifier, data.Verifier.TokenFiles(), check, log),
            data.Tokenizer.PadId, ValidationOf(data, prepared));
    }

    /// <summary>What train.eval_interval validates: data.valid's directions, translated as eval.valid_* say.</summary>
    private TrainingValidation? ValidationOf(DataSource data, PrepareResult prepared)
    {
        if (Config.Train.EvalInterval == 0 || Config.Data.Valid.Count == 0) return null;
        var eval = Config.Eval;
        var options = new ValidationOptions(Translator.OptionsFrom(eval, eval.ValidBeam),
            new ScoringOptions { Bleu = new BleuOptions { Tokenize = eval.Tokenize } }, eval.ValidSentences);
        return new TrainingValidation(data.Tokenizer, MtValidator.Directions(Config, data, prepared, "valid"), options);
    }

    /// <summary>Builds the run on a given batch stream (benchmarks: random tokens) whose padding id is <paramref name="padId"/>.</summary>
    public Trainer Build(ILogger log, ITrainingObserver observer, IBatchStream batches, int padId, TrainingValidation? validation = null)
    {
        if (Trainer is not null) throw new InvalidOperationException("the session is already built");
        // Every rank builds the same initial weights from train.seed (its block of experts under expert parallelism),
        // so no broadcast is needed.
        Seq2SeqTransformer model;
        // Under the gate: in-process ranks share torch's generator, and another rank's reseed or initial weights
        // must not land in the middle of these draws.
        lock (GlobalGenerator.Gate)
        {
            manual_seed(Config.Train.Seed);
            model = new Seq2SeqTransformer(Config.Model, padId, Layout.ModelExpertGroup) { ComputeDtype = Dtype };
        }
        owned.Add(model);
        MoeSeeding.Apply(model, Config.Train.Seed);
        model.MoeExecution = MoeExecutionPath.For(Device, Layout.ExpertParallel > 1);
        log.Information("output directory {Dir}", Path.GetFullPath(OutputDir));
        if (World.Size > 1)
            log.Information("rank {Rank} of {World} ({Backend}, launcher {Launcher}); micro-batch budget {Budget} tokens",
                World.Rank, World.Size, World.Backend, Launch.Launcher, DataSource.MicroBatchTokens(Config.Train, Layout.DataParallel));
        foreach (var w in Warnings)
            log.Warning("{Warning}", w);
        if (Plan.InitFrom is not null)
        {
            CheckpointLoader.LoadWeights(Plan.InitFrom, model);
            log.Information("initialised weights from {Dir} (step 0, fresh optimizer)", Plan.InitFrom);
        }
        // The parameters move once, before the optimizer creates its state next to them.
        if (Device.type != DeviceType.CPU)
            model.to(Device);
        log.Information("device {Device}{Why}", ComputeDevice.Describe(Device, Dtype),
            Config.Train.Dtype == "auto" ? $" (train.dtype auto: {Bf16Support.Of(Device).Why})" : "");
        log.Information("allocator {Allocator}", NativeMemoryTuning.Describe());
        if (LibTorchLoader.LoadedFrom is { } libtorch)
            log.Information("LibTorch from {Dir} (ZCODE_LIBTORCH)", libtorch);

        var optimizer = new AdamWOptimizer(model, Config.Train, Config.Parallel, Layout, bucketBytes);
        owned.Add(optimizer);
        var trainer = new Trainer(Config, model, optimizer, batches, OutputDir, log, observer, Layout, Device, validation);
        if (Plan.ResumeFrom is not null)
            trainer.Restore(Plan.ResumeFrom);
        Model = model;
        Trainer = trainer;
        return trainer;
    }

    /// <summary>
    /// Several ranks on one node each take their own GPU: with train.device auto or cuda, local rank i uses cuda:i
    /// (an explicit cuda:N is kept, for a launcher that sets CUDA_VISIBLE_DEVICES per rank).
    /// </summary>
    private static Device LocalDevice(Device resolved, string setting, LaunchEnvironment launch)
    {
        if (resolved.type != DeviceType.CUDA || launch.LocalSize <= 1 || setting is not ("auto" or "cuda"))
            return resolved;
        if (launch.LocalRank >= torch.cuda.device_count())
            throw new InvalidOperationException($"local rank {launch.LocalRank} has no GPU: the config validator checks train.device");
        return new Device(DeviceType.CUDA, launch.LocalRank);
    }

    /// <summary>runs/&lt;timestamp&gt;, with rank 0's clock on every rank.</summary>
    private static string DefaultOutput(ICommunicator world)
    {
        long stamp = HostCollectives.Broadcast(world, long.Parse(DateTime.Now.ToString("yyyyMMddHHmmss")), 0);
        var s = stamp.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Path.Combine("runs", $"{s[..8]}-{s[8..]}");
    }

    public void Dispose()
    {
        for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        owned.Clear();
        Layout.Dispose();
    }
}
