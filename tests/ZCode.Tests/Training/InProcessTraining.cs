using TorchSharp;
using ZCode.Config;
using ZCode.Tests.Parallel;
using ZCode.Training;

namespace ZCode.Tests.Training;

/// <summary>
/// Runs <c>zcode train</c>'s own assembly of a run (<see cref="TrainingSession"/>) on N in-process ranks
/// (<see cref="InProcessGroup"/>) and returns rank 0's per-step losses. In-process ranks share torch's global
/// generator, so callers turn dropout off (the session serialises model initialisation for the same reason).
/// </summary>
internal static class InProcessTraining
{
    private sealed class Losses : ITrainingObserver
    {
        public readonly List<double> Values = new();
        public Action<int>? AfterStep;
        public void OnStart(int startStep, int maxSteps) { }
        public void OnStep(StepMetrics m, bool logged)
        {
            Values.Add(m.Loss);
            AfterStep?.Invoke(m.Step);
        }
        public void OnCheckpoint(int step, string directory) { }
        public void OnFinish(int step, bool interrupted) { }
    }

    /// <param name="resume">A checkpoint to resume from (as <c>--resume PATH</c>).</param>
    /// <param name="cancelAt">When set, that rank alone cancels its run after that step (a signal reaching one rank).</param>
    public static List<double> Run(ZCodeConfig cfg, int ranks, string output, string? resume = null, (int Rank, int Step)? cancelAt = null)
    {
        // One intra-op thread per in-process rank, as train.threads would give each rank of a launch on a small node.
        cfg.Train.Threads = 1;
        var losses = new Losses();
        InProcessGroup.Run(ranks, comm =>
        {
            using var session = TrainingSession.Open(cfg, new TrainingSessionOptions
            {
                World = comm, OutputDir = output, Start = new RunStart(resume ?? "never"), BucketBytes = 1 << 16,
            });
            var observer = comm.Rank == 0 ? losses : new Losses();
            using var cancel = new CancellationTokenSource();
            if (cancelAt is { } c && c.Rank == comm.Rank)
                observer.AfterStep = step => { if (step == c.Step) cancel.Cancel(); };
            session.Build(Serilog.Core.Logger.None, observer).Run(cancel.Token);
        }, TimeSpan.FromMinutes(5));
        return losses.Values;
    }
}
