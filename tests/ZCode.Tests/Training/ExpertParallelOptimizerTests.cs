using TorchSharp;
using ZCode.Config;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Tests.Parallel;
using ZCode.Training;
using ZCode.Training.Optimization;
using static TorchSharp.torch;

namespace ZCode.Tests.Training;

/// <summary>
/// Gradient reduction and ZeRO with expert parallelism (world 4 = 2 data-parallel x 2 expert-parallel): non-expert
/// gradients summed over the world, expert gradients over the expert-data-parallel group {0,2} / {1,3}, the global
/// norm counting every expert once. After two optimizer steps on four micro-batches (one per rank), every rank's
/// shared weights and its block of experts equal those of one process that ran all four micro-batches.
/// </summary>
[NonParallelizable]
public class ExpertParallelOptimizerTests
{
    private static ZCodeConfig Config(int stage) => ConfigLoader.LoadDefault([
        "model.dropout=0", "model.moe.token_priority=order", "model.d_model=32", "model.ffn_dim=64", "model.heads=2",
        "model.vocab_size=200", $"parallel.zero_stage={stage}", "train.clip_norm=0.05",
    ]);

    private static (Tensor Src, Tensor TgtIn, Tensor TgtOut)[] Batches()
    {
        var g = new Generator(7);
        return Enumerable.Range(0, 4).Select(_ =>
        {
            var src = randint(4, 200, new long[] { 3, 7 }, generator: g);
            var tgt = randint(4, 200, new long[] { 3, 6 }, generator: g);
            return (src, tgt, tgt.roll(-1, 1));
        }).ToArray();
    }

    private static Seq2SeqTransformer Build(ZCodeConfig cfg, ExpertParallelGroup? group)
    {
        lock (GlobalGenerator.Gate) // model init draws from torch's global generator, shared by the in-process ranks
        {
            manual_seed(11);
            return new Seq2SeqTransformer(cfg.Model, 0, group);
        }
    }

    /// <summary>Two steps of the trainer's recipe over the given global micro-batch indices.</summary>
    private static void Train(ZCodeConfig cfg, Seq2SeqTransformer model, AdamWOptimizer opt, IEnumerable<int> micro)
    {
        var batches = Batches();
        long total = batches.Sum(b => b.TgtOut.numel());
        model.train();
        for (int step = 1; step <= 2; step++)
        {
            opt.ZeroGrad();
            foreach (var m in micro)
            {
                using var scope = NewDisposeScope();
                var (src, tgtIn, tgtOut) = batches[m];
                var (loss, _) = Losses.LabelSmoothedCrossEntropy(model.call(src, tgtIn), tgtOut, 0, 0.1);
                var objective = loss / total + model.AuxLoss()! * (0.01 * tgtOut.numel() / total);
                objective.backward();
            }
            opt.Step(1e-2, cfg.Train.ClipNorm);
        }
    }

    [TestCase(0)]
    [TestCase(2)]
    public void FourRanksWithTwoExpertGroupsMatchOneProcess(int stage)
    {
        var cfg = Config(stage);
        var reference = Build(cfg, null);
        using (var single = ParallelLayout.Single())
            Train(cfg, reference, new AdamWOptimizer(reference, cfg.Train, cfg.Parallel, single, 4096), [0, 1, 2, 3]);
        var expected = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

        InProcessGroup.Run(4, comm =>
        {
            using var layout = ParallelLayout.Create(comm, 2);
            var model = Build(cfg, layout.ModelExpertGroup);
            using var opt = new AdamWOptimizer(model, cfg.Train, cfg.Parallel, layout, 4096);
            Train(cfg, model, opt, [comm.Rank]);
            var experts = model.ExpertParameters().Select(p => p.Name).ToHashSet();
            // Attention key biases shift every score of a query equally, so softmax makes their gradient exactly zero:
            // what remains is rounding noise, which Adam scales up to step size. They are not compared.
            foreach (var (name, p) in model.named_parameters().Where(p => !p.name.EndsWith("k_proj.bias", StringComparison.Ordinal)))
            {
                var want = expected[name];
                if (experts.Contains(name)) // this rank's block of experts: position in its expert group x local count
                    want = want.narrow(0, comm.Rank % 2 * p.shape[0], p.shape[0]);
                var diff = (p.detach() - want).abs().max().item<float>();
                Assert.That(diff, Is.LessThan(2e-5), $"{name} on rank {comm.Rank}");
            }
        });
    }
}
