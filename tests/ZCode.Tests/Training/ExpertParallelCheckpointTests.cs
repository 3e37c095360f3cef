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
    private static ZCodeConfig Config(int steps, int accumulation, int expertParallel) => ConfigLoader.LoadDefault(
    [
        $"train.max_steps={steps}", "train.tokens_per_batch=512", $"train.grad_accumulation={accumulation}", "model.dropout=0",
        "train.warmup_steps=2", "train.save_interval=0", "train.threads=1", "model.moe.token_priority=order",
        "train.dtype=fp32", // the equivalence rule is an fp32 rule: bf16 rounds partial sums in a layout-dependent order
        $"parallel.expert_parallel={expertParallel}",
    ]);

    private string root = "";

    [SetUp]
    public void Create() => Directory.CreateDirectory(root = Path.Combine(Path.GetTempPath(), "zcode-ep-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void Remove() => Directory.Delete(root, recursive: true);

    [Test]
    public void CheckpointOfTwoExpertParallelRanksResumesInOneProcess()
    {
        var full = InProcessTraining.Run(Config(4, 1, 2), 2, Path.Combine(root, "full"));
        var first = Path.Combine(root, "first");
        InProcessTraining.Run(Config(2, 1, 2), 2, first);
        var ckpt = Path.Combine(first, "checkpoints", "step-0000002");
        var files = ((JsonObject)CheckpointReader.ReadVerifiedManifest(ckpt)["files"]!).Select(kv => kv.Key).ToList();
        Assert.That(files, Is.SupersetOf(new[]
        {
            "experts-L00-e000-001.safetensors", "experts-L00-e002-003.safetensors",
            "optimizer-experts-L01-e000-001.safetensors", "optimizer-experts-L01-e002-003.safetensors",
        }));

        var resumed = InProcessTraining.Run(Config(4, 2, 1), 1, first, resume: ckpt);
        Assert.That(resumed, Has.Count.EqualTo(2));
        for (int i = 0; i < 2; i++)
            Assert.That(Math.Abs(resumed[i] - full[i + 2]) / Math.Abs(full[i + 2]), Is.LessThan(1e-5),
                $"step {i + 3}: resumed {resumed[i]} vs expert-parallel {full[i + 2]}");
    }
}
