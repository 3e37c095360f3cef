using TorchSharp;
using ZCode.Config;
using ZCode.Data;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Tests.Parallel;
using ZCode.Training;

namespace ZCode.Tests.Training;

/// <summary>
/// Runs <c>zcode train</c>'s trainer on N in-process ranks (<see cref="InProcessGroup"/>), each building its model on
/// its layout's expert group, and returns rank 0's per-step losses. In-process ranks share torch's global generator,
/// so callers turn dropout off; model initialisation is serialised for the same reason.
/// </summary>
internal static class InProcessTraining
{
    private static readonly object InitGate = new();

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

    /// <param name="cancelAt">When set, that rank alone cancels its run after that step (a signal reaching one rank).</param>
    public static List<double> Run(ZCodeConfig cfg, int ranks, string output, string? resume = null, (int Rank, int Step)? cancelAt = null)
    {
        torch.set_num_threads(1);
        Directory.CreateDirectory(output);
        var losses = new Losses();
        InProcessGroup.Run(ranks, comm =>
        {
            using var layout = ParallelLayout.Create(comm, cfg.Parallel.ExpertParallel);
            Seq2SeqTransformer model;
            DataSource data;
            lock (InitGate)
            {
                data = DataSource.FromShards(cfg, dataParallel: ranks);
                torch.manual_seed(cfg.Train.Seed);
                model = new Seq2SeqTransformer(cfg.Model, data.Tokenizer.PadId, layout.ModelExpertGroup);
                MoeSeeding.Apply(model, cfg.Train.Seed);
            }
            var observer = comm.Rank == 0 ? losses : new Losses();
            using var cancel = new CancellationTokenSource();
            if (cancelAt is { } c && c.Rank == comm.Rank)
                observer.AfterStep = step => { if (step == c.Step) cancel.Cancel(); };
            var trainer = new Trainer(cfg, model, data.Train, output, Serilog.Core.Logger.None, observer, layout: layout, bucketBytes: 1 << 16);
            if (resume is not null) trainer.Restore(resume);
            trainer.Run(cancel.Token);
        }, TimeSpan.FromMinutes(5));
        return losses.Values;
    }
}
