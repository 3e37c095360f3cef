using Serilog;
using TorchSharp;
using ZCode.Config;
using ZCode.Data;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Tests.Parallel;
using ZCode.Training;

namespace ZCode.Tests.Training;

/// <summary>
/// The equivalence rule (DESIGN.md §7) with in-process ranks: W ranks with grad_accumulation A give the losses of one
/// process with grad_accumulation W*A, for ZeRO 0/1/2 and offload; and a ZeRO checkpoint written by 2 ranks resumes in
/// a single stage-0 process exactly where the 2 ranks go on. Dropout is off here because in-process ranks share
/// torch's global generator (separate processes under mpirun do not: see ParallelCliTests).
/// </summary>
[NonParallelizable]
public class DataParallelEquivalenceTests
{
    private sealed class Recorder : ITrainingObserver
    {
        public readonly List<double> Losses = new();
        public readonly List<double> Norms = new();
        public void OnStart(int startStep, int maxSteps) { }
        public void OnStep(StepMetrics m, bool logged) { Losses.Add(m.Loss); Norms.Add(m.GradNorm); }
        public void OnCheckpoint(int step, string directory) { }
        public void OnFinish(int step, bool interrupted) { }
    }

    private static ZCodeConfig Config(int steps, int accumulation, int stage, bool offload, params string[] extra) =>
        ConfigLoader.LoadDefault(new[]
        {
            $"train.max_steps={steps}", "train.tokens_per_batch=512", $"train.grad_accumulation={accumulation}",
            "model.dropout=0", "train.warmup_steps=2", "train.save_interval=0", "train.threads=1",
            $"parallel.zero_stage={stage}", $"parallel.offload_optimizer={(offload ? "true" : "false")}",
        }.Concat(extra));

    /// <summary>Trains on <paramref name="ranks"/> in-process ranks; returns rank 0's per-step losses.</summary>
    private static Recorder Train(ZCodeConfig cfg, int ranks, string output, string? resume = null)
    {
        torch.set_num_threads(1);
        Directory.CreateDirectory(output);
        var recorder = new Recorder();
        var gate = new object();
        InProcessGroup.Run(ranks, comm =>
        {
            using var layout = ParallelLayout.Create(comm, cfg.Parallel.ExpertParallel);
            Seq2SeqTransformer model;
            DataSource data;
            lock (gate) // initial weights draw from torch's global generator, which the in-process ranks share
            {
                data = DataSource.FromShards(cfg, dataParallel: ranks);
                torch.manual_seed(cfg.Train.Seed);
                model = new Seq2SeqTransformer(cfg.Model, data.Tokenizer.PadId, layout.ModelExpertGroup);
                MoeSeeding.Apply(model, cfg.Train.Seed);
            }
            var trainer = new Trainer(cfg, model, data.Train, output, Serilog.Core.Logger.None,
                comm.Rank == 0 ? recorder : new Recorder(), layout: layout, bucketBytes: 1 << 16);
            if (resume is not null) trainer.Restore(resume);
            trainer.Run(CancellationToken.None);
        }, TimeSpan.FromMinutes(5));
        return recorder;
    }

    private string root = "";

    [SetUp]
    public void Create() => Directory.CreateDirectory(root = Path.Combine(Path.GetTempPath(), "zcode-dp-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void Remove() => Directory.Delete(root, recursive: true);

    private static void AssertSameLosses(IReadOnlyList<double> actual, IReadOnlyList<double> expected, string what)
    {
        Assert.That(actual, Has.Count.EqualTo(expected.Count), what);
        for (int i = 0; i < expected.Count; i++)
            Assert.That(Math.Abs(actual[i] - expected[i]) / Math.Abs(expected[i]), Is.LessThan(1e-5),
                $"{what}: step {i + 1} loss {actual[i]} vs {expected[i]}");
    }

    [Test]
    public void TwoRanksEqualOneProcessWithTwiceTheAccumulationForEveryZeroStage()
    {
        const int steps = 4;
        var reference = Train(Config(steps, 2, 0, false), 1, Path.Combine(root, "ref")).Losses;
        foreach (var (stage, offload, ep) in new[] { (0, false, 1), (1, false, 1), (2, true, 1), (0, false, 2), (2, false, 2) })
        {
            var got = Train(Config(steps, 1, stage, offload, $"parallel.expert_parallel={ep}"), 2, Path.Combine(root, $"z{stage}{offload}{ep}")).Losses;
            AssertSameLosses(got, reference, $"2 ranks, expert_parallel {ep}, zero {stage}, offload {offload}");
        }
        // And ZeRO in one process is the same optimizer as stage 0.
        AssertSameLosses(Train(Config(steps, 2, 1, true), 1, Path.Combine(root, "z1single")).Losses, reference, "1 rank, zero 1");
    }

    [Test]
    public void ZeroCheckpointOfTwoRanksResumesInOneStageZeroProcess()
    {
        var full = Train(Config(4, 1, 2, false), 2, Path.Combine(root, "full")).Losses;
        var first = Path.Combine(root, "first");
        Train(Config(2, 1, 2, false), 2, first);
        var ckpt = Path.Combine(first, "checkpoints", "step-0000002");
        Assert.That(File.Exists(Path.Combine(ckpt, "optimizer-zero-rank00001.safetensors")), Is.True);
        var resumed = Train(Config(4, 2, 0, false), 1, first, resume: ckpt).Losses;
        AssertSameLosses(resumed, full.Skip(2).ToList(), "resumed on 1 rank, zero 0");
        // ... and on 2 ranks that split the experts (expert_parallel 2) with ZeRO 1: every slice finds its new owner.
        var again = Train(Config(4, 1, 1, false, "parallel.expert_parallel=2"), 2, first, resume: ckpt).Losses;
        AssertSameLosses(again, full.Skip(2).ToList(), "resumed on 2 expert-parallel ranks, zero 1");
    }
}
