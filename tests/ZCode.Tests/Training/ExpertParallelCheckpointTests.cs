using System.Text.Json.Nodes;
using TorchSharp;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Data;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Tests.Parallel;
using ZCode.Training;

namespace ZCode.Tests.Training;

/// <summary>
/// The trainer's checkpoints under expert parallelism: 2 in-process ranks with expert_parallel 2 save a checkpoint
/// (each rank its block of experts), and one process resumes from it to the same losses the 2 ranks go on with.
/// </summary>
[NonParallelizable]
public class ExpertParallelCheckpointTests
{
    private static readonly object InitGate = new();

    private sealed class Losses : ITrainingObserver
    {
        public readonly List<double> Values = new();
        public void OnStart(int startStep, int maxSteps) { }
        public void OnStep(StepMetrics m, bool logged) => Values.Add(m.Loss);
        public void OnCheckpoint(int step, string directory) { }
        public void OnFinish(int step, bool interrupted) { }
    }

    private static ZCodeConfig Config(int steps, int accumulation, int expertParallel) => ConfigLoader.LoadDefault(
    [
        $"train.max_steps={steps}", "train.tokens_per_batch=512", $"train.grad_accumulation={accumulation}", "model.dropout=0",
        "train.warmup_steps=2", "train.save_interval=0", "train.threads=1", "model.moe.token_priority=order",
        $"parallel.expert_parallel={expertParallel}",
    ]);

    /// <summary>Trains on <paramref name="ranks"/> in-process ranks (models built on each rank's expert group); rank 0's losses.</summary>
    private static List<double> Train(ZCodeConfig cfg, int ranks, string output, string? resume = null)
    {
        torch.set_num_threads(1);
        var streams = Enumerable.Range(0, ranks).Select(_ => DataSource.FromShards(cfg, dataParallel: ranks)).ToArray();
        var losses = new Losses();
        Directory.CreateDirectory(output);
        InProcessGroup.Run(ranks, comm =>
        {
            using var layout = ParallelLayout.Create(comm, cfg.Parallel.ExpertParallel);
            Seq2SeqTransformer model;
            lock (InitGate) // init draws from torch's global generator, which the rank threads share
            {
                torch.manual_seed(cfg.Train.Seed);
                model = new Seq2SeqTransformer(cfg.Model, streams[comm.Rank].Tokenizer.PadId, layout.ModelExpertGroup);
            }
            MoeSeeding.Apply(model, cfg.Train.Seed);
            var trainer = new Trainer(cfg, model, streams[comm.Rank].Train, output, Serilog.Core.Logger.None,
                comm.Rank == 0 ? losses : new Losses(), layout: layout, bucketBytes: 1 << 16);
            if (resume is not null) trainer.Restore(resume);
            trainer.Run(CancellationToken.None);
        }, TimeSpan.FromMinutes(5));
        return losses.Values;
    }

    private string root = "";

    [SetUp]
    public void Create() => Directory.CreateDirectory(root = Path.Combine(Path.GetTempPath(), "zcode-ep-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void Remove() => Directory.Delete(root, recursive: true);

    [Test]
    public void CheckpointOfTwoExpertParallelRanksResumesInOneProcess()
    {
        var full = Train(Config(4, 1, 2), 2, Path.Combine(root, "full"));
        var first = Path.Combine(root, "first");
        Train(Config(2, 1, 2), 2, first);
        var ckpt = Path.Combine(first, "checkpoints", "step-0000002");
        var files = ((JsonObject)CheckpointReader.ReadVerifiedManifest(ckpt)["files"]!).Select(kv => kv.Key).ToList();
        Assert.That(files, Is.SupersetOf(new[]
        {
            "experts-L00-e000-001.safetensors", "experts-L00-e002-003.safetensors",
            "optimizer-experts-L01-e000-001.safetensors", "optimizer-experts-L01-e002-003.safetensors",
        }));

        var resumed = Train(Config(4, 2, 1), 1, first, resume: ckpt);
        Assert.That(resumed, Has.Count.EqualTo(2));
        for (int i = 0; i < 2; i++)
            Assert.That(Math.Abs(resumed[i] - full[i + 2]) / Math.Abs(full[i + 2]), Is.LessThan(1e-5),
                $"step {i + 3}: resumed {resumed[i]} vs expert-parallel {full[i + 2]}");
    }
}
