using System.Diagnostics;
using ZCode.Config;
using ZCode.Parallel;
using ZCode.Runtime;
using ZCode.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Benchmarks;

/// <summary>Batch shape and step counts of <see cref="TrainStepBenchmark"/>.</summary>
/// <param name="Profile">Also time every phase of the timed steps (<see cref="StepProfile"/>).</param>
public sealed record TrainBenchOptions(int Batch, int SrcLen, int TgtLen, int Steps, int Warmup = TrainBenchOptions.DefaultWarmup,
    bool Profile = false)
{
    /// <summary>Untimed steps before the timed ones: .NET's tiered JIT keeps promoting the hot C# loops (dropout
    /// masks, the fused AdamW) past step 10; after 3 warm-up steps the median step measured ~15% slower than after 20,
    /// the steady state long training runs at.</summary>
    public const int DefaultWarmup = 20;
}

/// <summary>Median step time of full training steps and what it means in tokens per second.</summary>
/// <param name="StepTimesMs">Every timed step, in order.</param>
/// <param name="MatmulGflops">The device's matmul rate in the compute dtype probed right after each timed step
/// (<see cref="MatmulRate"/>, the best of <see cref="TrainStepBenchmark.ProbeProducts"/> products), in order.</param>
/// <param name="Dtype">The compute dtype the steps and the probes ran in.</param>
/// <param name="PhaseMs">With <see cref="TrainBenchOptions.Profile"/>: milliseconds per step of each phase (phases nest:
/// "forward" holds attention, ffn, moe ... and "optimizer" its three parts).</param>
public sealed record TrainBenchResult(TrainBenchOptions Options, long Params, long TokensPerStep, IReadOnlyList<double> StepTimesMs,
    IReadOnlyList<double> MatmulGflops, double LastLoss, string Device, ScalarType Dtype, IReadOnlyDictionary<string, double>? PhaseMs = null)
{
    public double StepMs => BenchStats.Median(StepTimesMs);
    public double TokensPerSecond => TokensPerStep / (StepMs / 1000.0);

    /// <summary>Model FLOPs utilisation: the median over timed steps of the step's FLOP rate over the matmul rate probed
    /// just after it. A step and its probe share the machine's state of that moment (on a shared host the rate drifts
    /// by a factor of two within seconds), which a single rate measured before or after all steps does not.</summary>
    public double Utilisation(double flopPerStep)
        => BenchStats.Median(StepTimesMs.Select((ms, i) => flopPerStep / 1e9 / (ms / 1000.0) / MatmulGflops[i]).ToArray());
}

/// <summary>
/// The trainer's own steps (<see cref="Trainer.Step"/>: forward, loss, backward, the optimizer's reduction, clipping
/// and AdamW) on a fixed batch of random tokens, in a run assembled by <see cref="TrainingSession"/> exactly as
/// <c>zcode train</c> assembles it, without data loading or writing anything. Tokens per step = batch * (src + tgt), as
/// bench/peer_torch.py counts them, so the two figures compare directly.
/// </summary>
public static class TrainStepBenchmark
{
    /// <summary>2048^3 products of the matmul probe after each timed step; the fastest counts.</summary>
    public const int ProbeProducts = 2;

    /// <summary>Runs the steps; the caller has checked the lengths against the model.</summary>
    public static TrainBenchResult Run(ZCodeConfig cfg, TrainBenchOptions o)
    {
        var batches = new RandomTokenBatches(cfg.Model.VocabSize, o.Batch, o.SrcLen, o.TgtLen, cfg.Train.Seed);
        using var world = new LocalCommunicator();
        // Nothing is written: the directory only names where a checkpoint would go.
        var output = Path.Combine(Path.GetTempPath(), $"zcode-bench-train-{Guid.NewGuid():N}");
        // Random tokens on one process: of the run rules, only the device applies.
        using var session = TrainingSession.Open(cfg, new TrainingSessionOptions
        {
            World = world, OutputDir = output, Checks = RunChecks.Device, LockOutput = false,
        });
        var trainer = session.Build(Serilog.Core.Logger.None, new SilentTrainingObserver(), batches, padId: 0);
        var device = session.Device;

        var times = new List<double>();
        var rates = new List<double>();
        using var rate = new MatmulRate(device, session.Dtype);
        if (device.type == DeviceType.CUDA) StepProfile.Synchronize = () => cuda.synchronize(device);
        for (int step = 0; step < o.Warmup + o.Steps; step++)
        {
            StepProfile.Enabled = o.Profile && step >= o.Warmup;
            var clock = Stopwatch.StartNew();
            trainer.Step(logged: false);
            // Kernels run asynchronously on a GPU: the step ends when the device is done.
            if (device.type == DeviceType.CUDA)
                cuda.synchronize(device);
            if (step < o.Warmup) continue;
            times.Add(clock.Elapsed.TotalMilliseconds);
            rates.Add(rate.Measure(ProbeProducts));
        }
        StepProfile.Enabled = false;
        StepProfile.Synchronize = null;
        var phases = o.Profile ? StepProfile.Totals.ToDictionary(p => p.Key, p => p.Value.Seconds * 1000 / o.Steps) : null;
        StepProfile.Reset();
        // One more, untimed step reads its figures back (a logged step also gathers statistics).
        double loss = trainer.Step(logged: true).Loss;
        long parameters = session.Model!.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        return new TrainBenchResult(o, parameters, batches.TokensPerBatch, times, rates, loss,
            ComputeDevice.Describe(device, session.Dtype), session.Dtype, phases);
    }
}
