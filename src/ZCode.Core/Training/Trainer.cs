using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Data;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Runtime;
using ZCode.Training.Optimization;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// Training loop: token-normalised label-smoothed cross entropy plus weighted MoE aux/z losses, the optimizer's step
/// at the scheduled learning rate, periodic metrics and crash-safe checkpoints. Data-parallel over the ranks of a
/// <see cref="ParallelLayout"/>: the step's global batch is cut into (ranks x grad_accumulation) micro-batches, rank r
/// trains on micro-batches r, r + W, r + 2W, ..., and the summed gradients equal those of one process running all of
/// them (<see cref="ITrainingOptimizer"/> reduces them). Only rank 0 writes metrics, progress and shared checkpoint
/// files. <see cref="TrainingSession"/> assembles a trainer with everything it needs.
/// </summary>
public sealed partial class Trainer
{
    private readonly ZCodeConfig cfg;
    private readonly Seq2SeqTransformer model;
    private readonly IBatchStream data;
    private readonly string outputDir;
    private readonly ILogger log;
    private readonly ITrainingObserver observer;
    private readonly ITrainingOptimizer optimizer;
    private readonly ParallelLayout layout;
    private readonly CheckpointStore checkpoints;
    private readonly Device device;
    private long totalTokens;
    private int startStep;
    private int step;
    private readonly Stopwatch runClock = new();
    private readonly TrainingValidation? validation;
    private readonly ExponentialMovingAverage? ema;
    private ValidationHistory history;
    private double[][] lastExpertLoad = [];
    private long intervalTokens;
    private readonly Stopwatch intervalClock = Stopwatch.StartNew();
    private readonly RoutingStatistics routing = new();
    private readonly SortedSet<string> intervalLangs = new(StringComparer.Ordinal);
    // Count of steps whose loss was not finite on this rank, on the device: checked (over all ranks) at log steps and
    // before saving.
    private readonly Tensor nonFinite;

    /// <param name="model">The model, on <paramref name="device"/>.</param>
    /// <param name="optimizer">The optimizer over <paramref name="model"/>'s parameters, for <paramref name="layout"/>.</param>
    /// <param name="data">Every rank must pass a stream that yields the same global sequence of micro-batches (same
    /// data, seed and budget).</param>
    /// <param name="layout">Process groups (<see cref="ParallelLayout.Single"/> trains in this process alone).</param>
    /// <param name="validation">What train.eval_interval validates on (null: no validation).</param>
    public Trainer(ZCodeConfig cfg, Seq2SeqTransformer model, ITrainingOptimizer optimizer, IBatchStream data, string outputDir,
        ILogger log, ITrainingObserver observer, ParallelLayout layout, Device device, TrainingValidation? validation = null)
    {
        this.cfg = cfg;
        this.model = model;
        this.optimizer = optimizer;
        this.data = data;
        this.outputDir = outputDir;
        this.log = log;
        this.observer = observer;
        this.device = device;
        this.layout = layout;
        nonFinite = zeros(1, ScalarType.Float32, this.device).squeeze().DetachFromDisposeScope();
        checkpoints = new CheckpointStore(outputDir, cfg.Train.KeepLast, cfg.Train.KeepEvery);
        this.validation = cfg.Train.EvalInterval > 0 ? validation : null;
        history = new ValidationHistory(cfg.Train.BestMetric);
        if (cfg.Train.EmaDecay > 0) ema = new ExponentialMovingAverage(model, cfg.Train.EmaDecay);
    }

    public CheckpointStore Checkpoints => checkpoints;

    private bool IsRank0 => layout.Rank == 0;

    /// <summary>Optimizer-state bytes held by this rank.</summary>
    public long OptimizerStateBytes => optimizer.StateBytes;

    /// <summary>Trains until train.max_steps or cancellation; always saves a final checkpoint. Returns the last step.
    /// With several ranks, a cancellation on any rank stops all of them after the same step (<see cref="StopAgreed"/>).</summary>
    public int Run(CancellationToken cancel)
    {
        var t = cfg.Train;
        if (IsRank0) Directory.CreateDirectory(outputDir);
        using var metrics = IsRank0 ? new MetricsWriter(Path.Combine(outputDir, "metrics.jsonl"), append: startStep > 0) : null;
        observer.OnStart(step, t.MaxSteps);
        log.Information("training {Params:N0} parameters for {Steps} steps, {Tokens} tokens per batch",
            model.parameters().Sum(p => p.numel()), t.MaxSteps, t.TokensPerBatch);
        LogLayout();

        int lastSaved = startStep > 0 ? startStep : -1;
        int lastChecked = startStep;
        bool stoppedEarly = false;
        runClock.Restart();
        intervalClock.Restart();
        while (!stoppedEarly && step < t.MaxSteps && !StopAgreed(cancel))
        {
            // Only logged steps read values back from the device (on CUDA: the only synchronisations of a step).
            var m = Step(IsLogStep(step + 1));
            if (m.Logged)
            {
                CheckFinite(step, lastChecked);
                lastChecked = step;
                metrics?.Write(m);
                lastExpertLoad = m.ExpertLoad;
                var eta = TimeSpan.FromSeconds(m.ElapsedSeconds / Math.Max(1, step - startStep) * (t.MaxSteps - step));
                log.Information("step {Step}/{MaxSteps} loss {Loss:F4} nll {Nll:F4} lr {Lr:E2} {Tps:N0} tok/s aux {Aux:F4} " +
                                "gnorm {G:F3} dropped {Drop:P1} eta {Eta:hh\\:mm\\:ss}",
                    m.Step, t.MaxSteps, m.Loss, m.NllLoss, m.Lr, m.TokensPerSecond, m.AuxLoss, m.GradNorm, m.DroppedFraction, eta);
            }
            observer.OnStep(m, m.Logged);
            bool validated = IsValidationStep(step);
            if (validated)
                stoppedEarly = Validate(step, metrics);
            // With keep_best every validated step gets a checkpoint, so the best ones exist to be kept.
            bool save = (t.SaveInterval > 0 && step % t.SaveInterval == 0) || (validated && t.KeepBest > 0);
            if (save && step < t.MaxSteps && !stoppedEarly)
            {
                CheckFinite(step, lastChecked);
                lastChecked = step;
                Save(step);
                lastSaved = step;
            }
        }

        bool interrupted = step < t.MaxSteps && !stoppedEarly;
        if (step > 0 && lastSaved != step)
        {
            CheckFinite(step, lastChecked);
            Save(step);
        }
        observer.OnFinish(step, interrupted);
        if (stoppedEarly)
            log.Information("stopped early at step {Step}: {Metric} did not improve in {Patience} validations (best {Best:F4} at step {BestStep})",
                step, t.BestMetric, t.Patience, history.Best!.Metric(t.BestMetric), history.Best.Step);
        else if (!interrupted) log.Information("finished at step {Step}", step);
        else if (step > 0) log.Information("interrupted at step {Step}; checkpoint saved", step);
        else log.Information("stopped before the first step; nothing to save");
        return step;
    }

    private bool IsLogStep(int step) => step % Math.Max(1, cfg.Train.LogInterval) == 0 || step == cfg.Train.MaxSteps || step == 1;

    /// <summary>
    /// Whether to stop before the step after <paramref name="step"/>: this rank's cancellation, or with several ranks
    /// any rank's, so that all leave the loop after the same step and save the same checkpoint together. The ranks
    /// compare after every step: a stop must come within a preemption notice, while a step of several ranks already
    /// waits for its gradient collectives, so one more all-reduce of a single value costs next to nothing.
    /// </summary>
    private bool StopAgreed(CancellationToken cancel)
    {
        bool mine = cancel.IsCancellationRequested;
        if (layout.WorldSize == 1) return mine;
        return HostCollectives.AllReduceSum(layout.World, [mine ? 1 : 0])[0] > 0;
    }

    /// <summary>
    /// Trains one optimizer step (the one after <see cref="StartStep"/> or the last step taken) without writing
    /// anything: <see cref="Run"/> calls it in its loop, benchmarks time it alone. With <paramref name="logged"/> the
    /// step's figures are read from the device and reduced over the ranks (every rank must pass the same value), and
    /// routing statistics restart; otherwise the figures of the returned metrics are NaN.
    /// </summary>
    public StepMetrics Step(bool logged)
    {
        var t = cfg.Train;
        if (!runClock.IsRunning) runClock.Start();
        step++;
        var stepClock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        model.train();
        int ranks = layout.DataParallel;

        // Fetch the step's whole global batch first (every rank draws the same sequence): each micro-batch's loss is
        // divided by the global batch's target tokens, so the summed gradient equals one big batch's whatever the
        // accumulation count and world size.
        var waitClock = Stopwatch.StartNew();
        var global = Enumerable.Range(0, Math.Max(1, t.GradAccumulation) * ranks).Select(_ => data.Next()).ToList();
        var dataWait = waitClock.Elapsed.TotalSeconds;
        long stepTokens = global.Sum(b => (long)b.TgtTokenCount);
        foreach (var b in global)
            foreach (var e in b.Examples)
                intervalLangs.Add(e.TgtLang);

        var lr = LearningRateSchedule.At(t, step);
        optimizer.ZeroGrad();
        // Step sums [loss, nll, aux, z] of this rank's micro-batches stay on the device; they are read once, and only
        // on logged steps, where one all-reduce makes them (and the per-task and expert figures) global.
        Tensor? sums = null;
        var byTask = logged ? new TaskMetrics() : null;
        var expertStats = logged ? new ExpertStepStatistics(model.MoeLayers) : null;
        for (int micro = layout.Rank; micro < global.Count; micro += ranks)
        {
            var batch = global[micro];
            using var microScope = NewDisposeScope();
            // Randomness depends on (seed, step, global micro-batch index) only: this rank draws for micro-batch m what
            // a single process running every micro-batch draws for it.
            StepSeeding.ApplyMicro(model, t.Seed, step, micro);
            var b = DeviceBatch.Upload(batch, routing.RowLanguages(batch), device);
            Tensor logits;
            using (StepProfile.Measure("forward"))
                logits = model.Forward(b.Src, b.TgtIn, batch.SrcTokenCount, batch.TgtTokenCount);
            Tensor loss, nll;
            using (StepProfile.Measure("loss"))
                (loss, nll) = Losses.LabelSmoothedCrossEntropy(logits, b.TgtOut, model.PadId, t.LabelSmoothing);
            var share = (double)batch.TgtTokenCount / Math.Max(1, stepTokens);
            var objective = loss / Math.Max(1, stepTokens);
            var aux = model.AuxLoss();
            var z = model.ZLoss();
            if (aux is not null && cfg.Model.Moe.AuxLossWeight > 0)
                objective = objective + aux * (cfg.Model.Moe.AuxLossWeight * share);
            if (z is not null && cfg.Model.Moe.ZLossWeight > 0)
                objective = objective + z * (cfg.Model.Moe.ZLossWeight * share);
            using (StepProfile.Measure("backward"))
                objective.backward();

            using (no_grad())
            {
                var zero = zeros(1, ScalarType.Float32, device).squeeze();
                var row = stack(new[] { loss, nll, (aux ?? zero) * share, (z ?? zero) * share }).to_type(ScalarType.Float32);
                sums = (sums is null ? row : sums + row).MoveToOuterDisposeScope();
            }
            byTask?.Add(batch, logits, b.TgtOut, model.PadId, HostTransfers.Item<float>(nll));
            routing.Add(model.MoeLayers, b.RowLanguages);
            // Expert load and drops over every micro-batch of a logged step (reads each layer's counts once).
            expertStats?.Add();
        }

        Tensor gradNorm;
        using (StepProfile.Measure("optimizer"))
            gradNorm = optimizer.Step(lr, t.ClipNorm);
        using (StepProfile.Measure("ema"))
            ema?.Update();
        totalTokens += stepTokens;
        using (no_grad())
            nonFinite.add_(sums![0].isfinite().logical_not().to_type(ScalarType.Float32));

        // Logged steps only: one read of [loss, nll, aux, z, gnorm], then one reduction by name carries every figure
        // rank 0 logs, so it reports the global batch, not its share. Every rank knows which steps are logged, so all
        // take part. The gradient norm is already global (equal on every rank): it is not summed.
        NamedSums? figures = null;
        double gradNormValue = double.NaN;
        if (logged)
        {
            var read = HostTransfers.Read<float>(cat([sums!, gradNorm.reshape(1)], 0));
            gradNormValue = read[4];
            figures = new NamedSums();
            figures.Add("loss", read[0]);
            figures.Add("nll", read[1]);
            figures.Add("aux", read[2]);
            figures.Add("z", read[3]);
            var tasks = global.SelectMany(b => b.Examples.Select(e => e.Task)).ToHashSet();
            var langs = global.SelectMany(b => b.Examples.SelectMany(e => new[] { e.SrcLang, e.TgtLang })).ToHashSet();
            expertStats!.AddTo(figures);
            byTask!.AddTo(figures, tasks, langs);
            routing.AddTo(figures, model.MoeLayers, intervalLangs);
            figures.Reduce(layout.World);
            expertStats.TakeFrom(figures);
            byTask.TakeFrom(figures, tasks, langs);
            routing.TakeFrom(figures, model.MoeLayers, intervalLangs);
        }
        var seconds = stepClock.Elapsed.TotalSeconds;
        // Throughput over the steps since the last logged step: on a GPU the steps in between only queue work, and
        // the read above waited for all of it, so a single step's time would not mean anything there.
        intervalTokens += stepTokens;
        double tokensPerSecond = intervalTokens / Math.Max(1e-9, intervalClock.Elapsed.TotalSeconds);
        if (logged)
        {
            intervalTokens = 0;
            intervalClock.Restart();
        }
        var m = new StepMetrics
        {
            Step = step, MaxSteps = t.MaxSteps, Logged = logged,
            Loss = figures is null ? double.NaN : figures["loss"] / Math.Max(1, stepTokens),
            NllLoss = figures is null ? double.NaN : figures["nll"] / Math.Max(1, stepTokens),
            Lr = lr, Tokens = stepTokens, TotalTokens = totalTokens,
            TokensPerSecond = tokensPerSecond,
            AuxLoss = figures?["aux"] ?? double.NaN, ZLoss = figures?["z"] ?? double.NaN,
            GradNorm = gradNormValue,
            StepSeconds = seconds, DataWaitSeconds = dataWait, ElapsedSeconds = runClock.Elapsed.TotalSeconds,
            LossByTask = byTask?.LossByTask ?? new Dictionary<string, double>(),
            TokensByLang = byTask?.TokensByLang ?? new Dictionary<string, long>(),
            OptimizerStateBytes = optimizer.StateBytes,
        };
        if (logged)
        {
            (m.ExpertLoad, m.DroppedFraction) = expertStats!.Result();
            m.RouterEntropy = routing.RouterEntropy();
            m.ExpertUsageByLang = routing.ExpertUsageByLanguage();
            m.LoadImbalance = routing.LoadImbalance();
            routing.Reset();
            intervalLangs.Clear();
        }
        return m;
    }

    /// <summary>Throws when any step since the last check had a non-finite loss on any rank (one device read and, with
    /// several ranks, one all-reduce; called at log steps and before every checkpoint, which every rank reaches
    /// together, so a diverged model is never saved and all ranks stop).</summary>
    private void CheckFinite(int step, int lastChecked)
    {
        if (HostCollectives.AllReduceSum(layout.World, [HostTransfers.Item<float>(nonFinite)])[0] == 0)
            return;
        var when = step - lastChecked <= 1 ? $"at step {step}" : $"between steps {lastChecked + 1} and {step}";
        throw new InvalidOperationException($"loss became non-finite {when}; lower train.lr or check the data");
    }
}
