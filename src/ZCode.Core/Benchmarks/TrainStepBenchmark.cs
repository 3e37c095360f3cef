using System.Diagnostics;
using ZCode.Config;
using ZCode.Model;
using ZCode.Runtime;
using ZCode.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Benchmarks;

/// <summary>Batch shape and step counts of <see cref="TrainStepBenchmark"/>.</summary>
public sealed record TrainBenchOptions(int Batch, int SrcLen, int TgtLen, int Steps, int Warmup = 3, long Seed = 1);

/// <summary>Median step time of full training steps and what it means in tokens per second.</summary>
public sealed record TrainBenchResult(TrainBenchOptions Options, long Params, long TokensPerStep, double StepMs, double LastLoss,
    string Device)
{
    public double TokensPerSecond => TokensPerStep / (StepMs / 1000.0);
}

/// <summary>
/// Full training steps on random tokens, as the trainer does them (forward, label-smoothed loss + weighted aux/z
/// losses, backward, global-norm clipping, AdamW), without data loading. Tokens per step = batch * (src + tgt), as
/// shared/bench/peer_torch.py counts them, so the two figures compare directly.
/// </summary>
public static class TrainStepBenchmark
{
    /// <summary>Ids 0..3 are pad/unk/bos/eos-like specials: never sampled.</summary>
    public const int FirstRegularId = 4;

    /// <summary>Runs the steps; the caller has checked the lengths against the model (and the config with ConfigValidator).</summary>
    public static TrainBenchResult Run(ZCodeConfig cfg, TrainBenchOptions o)
    {
        if (o.SrcLen > cfg.Model.MaxPositions || o.TgtLen > cfg.Model.MaxPositions || cfg.Model.VocabSize <= FirstRegularId)
            throw new ArgumentException($"lengths {o.SrcLen}/{o.TgtLen} beyond model.max_positions {cfg.Model.MaxPositions}, " +
                                        $"or model.vocab_size {cfg.Model.VocabSize} without regular ids", nameof(o));
        var device = ComputeDevice.Resolve(cfg.Train.Device);
        manual_seed(o.Seed);
        using var model = new Seq2SeqTransformer(cfg.Model, padId: 0)
        {
            ComputeDtype = ComputeDevice.Dtype(cfg.Train.Dtype),
        };
        MoeSeeding.Apply(model, o.Seed);
        if (device.type != DeviceType.CPU)
            model.to(device);
        model.train();
        var optimizer = OptimizerFactory.Create(model, cfg.Train);
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        long paramCount = parameters.Sum(p => p.numel());
        using var src = randint(FirstRegularId, cfg.Model.VocabSize, new long[] { o.Batch, o.SrcLen }, device: device);
        using var tgt = randint(FirstRegularId, cfg.Model.VocabSize, new long[] { o.Batch, o.TgtLen + 1 }, device: device);
        using var tgtIn = tgt.narrow(1, 0, o.TgtLen);
        using var tgtOut = tgt.narrow(1, 1, o.TgtLen);
        long targets = (long)o.Batch * o.TgtLen;
        var moe = cfg.Model.Moe;

        var times = new List<double>();
        Tensor? lastObjective = null;
        for (int step = 0; step < o.Warmup + o.Steps; step++)
        {
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                optimizer.zero_grad();
                var logits = model.Forward(src, tgtIn, src.numel(), tgtIn.numel());
                var (smoothed, _) = Losses.LabelSmoothedCrossEntropy(logits, tgtOut, model.PadId, cfg.Train.LabelSmoothing);
                var objective = smoothed / targets;
                var aux = model.AuxLoss();
                var z = model.ZLoss();
                if (aux is not null && moe.AuxLossWeight > 0) objective = objective + aux * moe.AuxLossWeight;
                if (z is not null && moe.ZLossWeight > 0) objective = objective + z * moe.ZLossWeight;
                objective.backward();
                GradientClipping.ClipByGlobalNorm(parameters, cfg.Train.ClipNorm);
                optimizer.step();
                lastObjective?.Dispose();
                lastObjective = objective.detach().MoveToOuterDisposeScope();
                // Kernels run asynchronously on a GPU: the step ends when the device is done.
                if (device.type == DeviceType.CUDA)
                    cuda.synchronize(device);
            }
            if (step >= o.Warmup) times.Add(clock.Elapsed.TotalMilliseconds);
        }
        double loss = lastObjective is null ? double.NaN : lastObjective.item<float>();
        lastObjective?.Dispose();
        return new TrainBenchResult(o, paramCount, (long)o.Batch * (o.SrcLen + o.TgtLen), BenchStats.Median(times), loss,
            ComputeDevice.Describe(device, model.ComputeDtype));
    }
}
