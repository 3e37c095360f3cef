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
using ZCode.Runtime;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// Single-process training loop: token-normalised label-smoothed cross entropy plus weighted MoE aux/z losses,
/// AdamW with warmup schedule, global-norm clipping, periodic metrics and crash-safe checkpoints.
/// </summary>
public sealed partial class Trainer
{
    private readonly ZCodeConfig cfg;
    private readonly Seq2SeqTransformer model;
    private readonly IBatchStream data;
    private readonly string outputDir;
    private readonly ILogger log;
    private readonly ITrainingObserver observer;
    private readonly AdamW optimizer;
    private readonly CheckpointStore checkpoints;
    private readonly Device device;
    private long totalTokens;
    private int startStep;
    private double[][] lastExpertLoad = [];
    private double[][] stepExpertLoad = [];
    private double stepDropped;
    private long intervalTokens;
    private readonly Stopwatch intervalClock = Stopwatch.StartNew();
    private readonly RoutingStatistics routing = new();
    // Count of steps whose loss was not finite, on the device: checked at log steps and before saving.
    private readonly Tensor nonFinite;

    /// <param name="device">Where the model lives (it must already be there, before this constructor builds the
    /// optimizer state next to the parameters); null = CPU.</param>
    public Trainer(ZCodeConfig cfg, Seq2SeqTransformer model, IBatchStream data, string outputDir, ILogger log,
        ITrainingObserver observer, Device? device = null)
    {
        this.cfg = cfg;
        this.model = model;
        this.data = data;
        this.outputDir = outputDir;
        this.log = log;
        this.observer = observer;
        this.device = device ?? CPU;
        nonFinite = zeros(1, ScalarType.Float32, this.device).squeeze().DetachFromDisposeScope();
        optimizer = OptimizerFactory.Create(model, cfg.Train);
        checkpoints = new CheckpointStore(outputDir, cfg.Train.KeepLast, cfg.Train.KeepEvery);
    }

    public CheckpointStore Checkpoints => checkpoints;

    /// <summary>Trains until train.max_steps or cancellation; always saves a final checkpoint. Returns the last step.</summary>
    public int Run(CancellationToken cancel)
    {
        var t = cfg.Train;
        int step = startStep;
        var clock = Stopwatch.StartNew();
        using var metrics = new MetricsWriter(Path.Combine(outputDir, "metrics.jsonl"), append: startStep > 0);
        observer.OnStart(step, t.MaxSteps);
        log.Information("training {Params:N0} parameters for {Steps} steps, {Tokens} tokens per batch",
            model.parameters().Sum(p => p.numel()), t.MaxSteps, t.TokensPerBatch);

        int lastSaved = startStep > 0 ? startStep : -1;
        int lastChecked = startStep;
        intervalClock.Restart();
        while (step < t.MaxSteps && !cancel.IsCancellationRequested)
        {
            step++;
            // Only logged steps read values back from the device (on CUDA: the only synchronisations of a step).
            bool logged = step % Math.Max(1, t.LogInterval) == 0 || step == t.MaxSteps || step == 1;
            var m = TrainStep(step, logged, clock);
            if (logged)
            {
                CheckFinite(step, lastChecked);
                lastChecked = step;
                metrics.Write(WithRouting(m));
                lastExpertLoad = m.ExpertLoad;
                var eta = TimeSpan.FromSeconds(m.ElapsedSeconds / Math.Max(1, step - startStep) * (t.MaxSteps - step));
                log.Information("step {Step}/{MaxSteps} loss {Loss:F4} nll {Nll:F4} lr {Lr:E2} {Tps:N0} tok/s aux {Aux:F4} " +
                                "gnorm {G:F3} dropped {Drop:P1} eta {Eta:hh\\:mm\\:ss}",
                    m.Step, t.MaxSteps, m.Loss, m.NllLoss, m.Lr, m.TokensPerSecond, m.AuxLoss, m.GradNorm, m.DroppedFraction, eta);
            }
            observer.OnStep(m, logged);
            if (t.SaveInterval > 0 && step % t.SaveInterval == 0 && step < t.MaxSteps)
            {
                CheckFinite(step, lastChecked);
                lastChecked = step;
                Save(step);
                lastSaved = step;
            }
        }

        bool interrupted = step < t.MaxSteps;
        if (step > 0 && lastSaved != step)
        {
            CheckFinite(step, lastChecked);
            Save(step);
        }
        observer.OnFinish(step, interrupted);
        log.Information(interrupted ? "interrupted at step {Step}; checkpoint saved" : "finished at step {Step}", step);
        return step;
    }

    private StepMetrics TrainStep(int step, bool logged, Stopwatch clock)
    {
        var t = cfg.Train;
        var stepClock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        model.train();
        StepSeeding.Apply(model, t.Seed, step);

        // Fetch every micro-batch first so each one's loss is divided by the step's total target tokens:
        // the gradient then equals one big batch's, whatever the accumulation count (DESIGN.md §10).
        var waitClock = Stopwatch.StartNew();
        var micro = Enumerable.Range(0, Math.Max(1, t.GradAccumulation)).Select(_ => data.Next()).ToList();
        var dataWait = waitClock.Elapsed.TotalSeconds;
        long stepTokens = micro.Sum(b => (long)b.TgtTokenCount);

        var lr = LearningRateSchedule.At(t, step);
        OptimizerFactory.SetLearningRate(optimizer, lr);
        optimizer.zero_grad();
        // Step sums [loss, nll, aux, z] stay on the device; they are read once, and only on logged steps.
        Tensor? sums = null;
        var byTask = logged ? new TaskMetrics() : null;
        foreach (var batch in micro)
        {
            using var microScope = NewDisposeScope();
            var b = DeviceBatch.Upload(batch, routing.RowLanguages(batch), device);
            var logits = model.Forward(b.Src, b.TgtIn, batch.SrcTokenCount, batch.TgtTokenCount);
            var (loss, nll) = Losses.LabelSmoothedCrossEntropy(logits, b.TgtOut, model.PadId, t.LabelSmoothing);
            var share = (double)batch.TgtTokenCount / Math.Max(1, stepTokens);
            var objective = loss / Math.Max(1, stepTokens);
            var aux = model.AuxLoss();
            var z = model.ZLoss();
            if (aux is not null && cfg.Model.Moe.AuxLossWeight > 0)
                objective = objective + aux * (cfg.Model.Moe.AuxLossWeight * share);
            if (z is not null && cfg.Model.Moe.ZLossWeight > 0)
                objective = objective + z * (cfg.Model.Moe.ZLossWeight * share);
            objective.backward();

            using (no_grad())
            {
                var zero = zeros(1, ScalarType.Float32, device).squeeze();
                var row = stack(new[] { loss, nll, (aux ?? zero) * share, (z ?? zero) * share }).to_type(ScalarType.Float32);
                sums = (sums is null ? row : sums + row).MoveToOuterDisposeScope();
            }
            if (byTask is not null)
                byTask.Add(batch, logits, b.TgtOut, model.PadId, HostTransfers.Item<float>(nll));
            routing.Add(model.MoeLayers, b.RowLanguages);
            // Expert load and drops are reported for the step's last forward (as before accumulation existed).
            if (logged && ReferenceEquals(batch, micro[^1]))
                (stepExpertLoad, stepDropped) = ExpertStatistics();
        }

        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        var gradNorm = GradientClipping.ClipByGlobalNorm(parameters, t.ClipNorm);
        optimizer.step();
        totalTokens += stepTokens;
        using (no_grad())
            nonFinite.add_(sums![0].isfinite().logical_not().to_type(ScalarType.Float32));

        double[] values = logged ? HostTransfers.Read<float>(cat([sums, gradNorm.reshape(1)], 0)).Select(v => (double)v).ToArray() : [];
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
        return new StepMetrics
        {
            Step = step, MaxSteps = t.MaxSteps, Logged = logged,
            Loss = logged ? values[0] / Math.Max(1, stepTokens) : double.NaN,
            NllLoss = logged ? values[1] / Math.Max(1, stepTokens) : double.NaN,
            Lr = lr, Tokens = stepTokens, TotalTokens = totalTokens,
            TokensPerSecond = tokensPerSecond,
            AuxLoss = logged ? values[2] : double.NaN, ZLoss = logged ? values[3] : double.NaN,
            GradNorm = logged ? values[4] : double.NaN,
            DroppedFraction = logged ? stepDropped : double.NaN, ExpertLoad = logged ? stepExpertLoad : [],
            StepSeconds = seconds, DataWaitSeconds = dataWait, ElapsedSeconds = clock.Elapsed.TotalSeconds,
            LossByTask = byTask?.LossByTask ?? new Dictionary<string, double>(),
            TokensByLang = byTask?.TokensByLang ?? new Dictionary<string, long>(),
        };
    }

    /// <summary>Throws when any step since the last check had a non-finite loss (one device read; called at log
    /// steps and before every checkpoint, so a diverged model is never saved).</summary>
    private void CheckFinite(int step, int lastChecked)
    {
        if (HostTransfers.Item<float>(nonFinite) == 0)
            return;
        var when = step - lastChecked <= 1 ? $"at step {step}" : $"between steps {lastChecked + 1} and {step}";
        throw new InvalidOperationException($"loss became non-finite {when}; lower train.lr or check the data");
    }

    /// <summary>Router entropy and per-language expert usage since the last logged step; then starts a new interval.</summary>
    private StepMetrics WithRouting(StepMetrics m)
    {
        m.RouterEntropy = routing.RouterEntropy();
        m.ExpertUsageByLang = routing.ExpertUsageByLanguage();
        routing.Reset();
        return m;
    }

    /// <summary>Per-layer expert load fractions and the mean dropped fraction over MoE layers, from the last forward.</summary>
    private (double[][] Load, double Dropped) ExpertStatistics()
    {
        var layers = model.MoeLayers;
        var load = new double[layers.Count][];
        double dropped = 0;
        for (int i = 0; i < layers.Count; i++)
        {
            var s = layers[i].LastStats;
            if (s is null) { load[i] = []; continue; }
            double kept = Math.Max(1, s.TokensPerExpert.Sum());
            load[i] = s.TokensPerExpert.Select(n => n / kept).ToArray();
            dropped += s.DroppedFraction;
        }
        return (load, layers.Count > 0 ? dropped / layers.Count : 0);
    }

    private void Save(int step)
    {
        var manifest = BuildManifest();
        var dir = checkpoints.Save(step, model, optimizer, manifest);
        observer.OnCheckpoint(step, dir);
        log.Information("saved checkpoint {Dir}", dir);
    }
}
