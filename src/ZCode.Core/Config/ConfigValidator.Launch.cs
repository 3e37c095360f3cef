using ZCode.Data;
using ZCode.Parallel;
using ZCode.Runtime;

namespace ZCode.Config;

public static partial class ConfigValidator
{
    /// <summary>train.device on this machine, with one GPU for every rank started on it.</summary>
    private static void Device(ZCodeConfig config, RunEnvironment environment, ValueChecker check)
    {
        var device = config.Train.Device;
        if (ComputeDevice.Problem(device, environment.CudaAvailable, environment.CudaDevices) is { } problem)
            check.Fail($"train.device: {problem}", "train.device");
        // auto and cuda give local rank i the GPU cuda:i; an explicit cuda:N is for launchers that set CUDA_VISIBLE_DEVICES.
        var ranksHere = environment.Launch.LocalSize;
        check.Require(!(UsesCuda(config, environment) && device is ("auto" or "cuda") && ranksHere > environment.CudaDevices && ranksHere > 1),
            $"train.device: {ranksHere} ranks on this node but {environment.CudaDevices} CUDA device(s); start at most one " +
            "rank per GPU, or set train.device: cpu", "train.device");
    }

    /// <summary>The processes of the launch: a backend that connects them, expert groups that tile them, and a
    /// micro-batch per rank that holds the longest sequence.</summary>
    private static void Launch(ZCodeConfig config, RunEnvironment environment, ValueChecker check)
    {
        var (p, t, launch) = (config.Parallel, config.Train, environment.Launch);
        if (Communicators.Problem(p.Backend, UsesCuda(config, environment), launch) is { } problem)
            check.Fail($"parallel.backend: {problem}", "parallel.backend");
        var world = launch.WorldSize;
        check.Require(world % p.ExpertParallel == 0,
            $"parallel.expert_parallel: {p.ExpertParallel} does not divide the {world} process(es) of this launch " +
            $"(launcher {launch.Launcher}); choose a divisor of the number of processes or start a multiple of {p.ExpertParallel}",
            "parallel.expert_parallel");
        var budget = DataSource.MicroBatchTokens(t, world);
        var maxLen = config.Data.MaxLen;
        var share = world > 1 ? $"(train.grad_accumulation {t.GradAccumulation} x {world} processes)" : $"train.grad_accumulation {t.GradAccumulation}";
        check.Require(budget >= maxLen,
            $"train.tokens_per_batch: {t.TokensPerBatch} / {share} = {budget} tokens per micro-batch, fewer than data.max_len " +
            $"({maxLen}), so the longest sequence would not fit; set train.tokens_per_batch to at least " +
            $"{(long)maxLen * t.GradAccumulation * world} or lower train.grad_accumulation",
            "train.tokens_per_batch", "train.grad_accumulation", "data.max_len");
    }

    private static bool UsesCuda(ZCodeConfig config, RunEnvironment environment)
        => environment.CudaAvailable && config.Train.Device != "cpu";
}
