using TorchSharp;
using TorchSharp.Modules;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Tests.Parallel;

/// <summary>ZeRO's sharded AdamW against TorchSharp's AdamW fed the same gradients (decoupled decay on weights only).</summary>
public class ShardedAdamWTests
{
    private const double Lr = 0.01, B1 = 0.9, B2 = 0.98, Eps = 1e-8, Wd = 0.1;

    private static List<(string Name, Parameter P, bool Decay, int First)> Params()
    {
        manual_seed(5);
        return
        [
            ("w1", new Parameter(randn(6, 4)), true, -1),
            ("bias", new Parameter(randn(4)), false, -1),
            ("w2", new Parameter(randn(3, 5)), true, -1),
            ("gain", new Parameter(randn(5)), false, -1),
        ];
    }

    private static Tensor[][] Gradients(int steps)
    {
        manual_seed(9);
        var shapes = Params().Select(p => p.P.shape).ToArray();
        return Enumerable.Range(0, steps).Select(_ => shapes.Select(s => randn(s)).ToArray()).ToArray();
    }

    [TestCase(1, false)]
    [TestCase(3, false)]
    [TestCase(3, true)]
    public void MatchesTorchSharpAdamW(int ranks, bool offload)
    {
        const int steps = 5;
        var grads = Gradients(steps);
        var reference = Params();
        var opt = optim.AdamW(new List<AdamW.ParamGroup>
        {
            new(reference.Where(x => x.Decay).Select(x => x.P), Lr, B1, B2, Eps, Wd),
            new(reference.Where(x => !x.Decay).Select(x => x.P), Lr, B1, B2, Eps, 0.0),
        }, Lr, B1, B2, Eps, Wd);
        for (int s = 0; s < steps; s++)
        {
            for (int i = 0; i < reference.Count; i++) reference[i].P.grad = grads[s][i].clone();
            opt.step();
        }

        InProcessGroup.Run(ranks, comm =>
        {
            var mine = Params();
            var part = FlatPartition.Build(mine.Select(x => (x.Name, x.P, x.Decay, x.First)), ranks, comm.Rank, bucketElements: 8);
            using var reducer = new GradientReducer(part, comm, CPU);
            using var adam = new ShardedAdamW(part, CPU, offload, B1, B2, Eps, Wd);
            for (int s = 0; s < steps; s++)
            {
                // Every rank holds 1/ranks of the gradient: the reduction sums them back to the full one.
                for (int i = 0; i < mine.Count; i++) mine[i].P.grad = grads[s][i] / ranks;
                reducer.ReduceToShard(adam.Grad, reduceScatter: true);
                reducer.AllGatherParameters(adam.Update(Lr));
            }
            Assert.That(adam.Step, Is.EqualTo(steps));
            for (int i = 0; i < mine.Count; i++)
            {
                var diff = (mine[i].P - reference[i].P).abs().max().item<float>();
                Assert.That(diff, Is.LessThan(1e-6), $"{mine[i].Name} on rank {comm.Rank}");
            }
            Assert.That(adam.StateBytes, Is.EqualTo(part.ShardSize * 4 * (offload ? 3 : 2)));
        });
    }
}
