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
/// The equivalence rule (docs/ARCHITECTURE.md §5) with in-process ranks: W ranks with grad_accumulation A give the losses of one
/// process with grad_accumulation W*A, for ZeRO 0/1/2 and offload; and a ZeRO checkpoint written by 2 ranks resumes in
/// a single stage-0 process exactly where the 2 ranks go on. Dropout is off here because in-process ranks share
/// torch's global generator (separate processes under mpirun do not: see ParallelCliTests).
/// </summary>
[NonParallelizable]
public class DataParallelEquivalenceTests
{
    private static ZCodeConfig Config(int steps, int accumulation, int stage, bool offload, params string[] extra) =>
        ConfigLoader.LoadDefault(new[]
        {
            $"train.max_steps={steps}", "train.tokens_per_batch=512", $"train.grad_accumulation={accumulation}",
            "model.dropout=0", "train.warmup_steps=2", "train.save_interval=0", "train.threads=1",
            "train.dtype=fp32", // the equivalence rule is an fp32 rule: bf16 rounds partial sums in a layout-dependent order
            $"parallel.zero_stage={stage}", $"parallel.offload_optimizer={(offload ? "true" : "false")}",
        }.Concat(extra));

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
        var reference = InProcessTraining.Run(Config(steps, 2, 0, false), 1, Path.Combine(root, "ref"));
        foreach (var (stage, offload, ep) in new[] { (0, false, 1), (1, false, 1), (2, true, 1), (0, false, 2), (2, false, 2) })
        {
            var got = InProcessTraining.Run(Config(steps, 1, stage, offload, $"parallel.expert_parallel={ep}"), 2, Path.Combine(root, $"z{stage}{offload}{ep}"));
            AssertSameLosses(got, reference, $"2 ranks, expert_parallel {ep}, zero {stage}, offload {offload}");
        }
        // And ZeRO in one process is the same optimizer as stage 0.
        AssertSameLosses(InProcessTraining.Run(Config(steps, 2, 1, true), 1, Path.Combine(root, "z1single")), reference, "1 rank, zero 1");
    }

    [Test]
    public void ZeroCheckpointOfTwoRanksResumesInOneStageZeroProcess()
    {
        var full = InProcessTraining.Run(Config(4, 1, 2, false), 2, Path.Combine(root, "full"));
        var first = Path.Combine(root, "first");
        InProcessTraining.Run(Config(2, 1, 2, false), 2, first);
        var ckpt = Path.Combine(first, "checkpoints", "step-0000002");
        Assert.That(File.Exists(Path.Combine(ckpt, "optimizer-zero-rank00001.safetensors")), Is.True);
        var resumed = InProcessTraining.Run(Config(4, 2, 0, false), 1, first, resume: ckpt);
        AssertSameLosses(resumed, full.Skip(2).ToList(), "resumed on 1 rank, zero 0");
        // ... and on 2 ranks that split the experts (expert_parallel 2) with ZeRO 1: every slice finds its new owner.
        var again = InProcessTraining.Run(Config(4, 1, 1, false, "parallel.expert_parallel=2"), 2, first, resume: ckpt);
        AssertSameLosses(again, full.Skip(2).ToList(), "resumed on 2 expert-parallel ranks, zero 1");
    }

    [Test]
    public void ACancelOnOneRankStopsEveryRankAfterTheSameStepAndSavesThere()
    {
        var output = Path.Combine(root, "stop");
        var losses = InProcessTraining.Run(Config(8, 1, 1, false), 2, output, cancelAt: (Rank: 1, Step: 3));
        Assert.That(losses, Has.Count.EqualTo(3), "rank 0 ran steps 1-3 and stopped with rank 1");
        Assert.That(Directory.GetDirectories(Path.Combine(output, "checkpoints")).Select(Path.GetFileName),
            Is.EqualTo(new[] { "step-0000003" }), "one checkpoint, of the step both stopped after");
    }
}
