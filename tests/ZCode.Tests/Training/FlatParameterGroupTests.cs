using TorchSharp;
using TorchSharp.Modules;
using ZCode.Parallel;
using ZCode.Tests.Parallel;
using ZCode.Training.Optimization;
using static TorchSharp.torch;

namespace ZCode.Tests.Training;

/// <summary>Parameters living in one flat buffer: views, bucketed reduction per ZeRO stage, and AdamW over a rank's
/// slice against TorchSharp's AdamW fed the same gradients (in-process ranks).</summary>
public class FlatParameterGroupTests
{
    private const double Lr = 0.01, B1 = 0.9, B2 = 0.98, Eps = 1e-8, Wd = 0.1;

    // Its own generator, not torch's global one: the in-process ranks call this at the same time, and draws from a
    // shared generator would interleave and give each rank different parameters.
    private static List<(string Name, Parameter P, bool Decay, int First)> Params()
    {
        using var g = new Generator(5);
        return
        [
            ("w1", new Parameter(randn(new long[] { 6, 4 }, generator: g)), true, -1),
            ("bias", new Parameter(randn(new long[] { 4 }, generator: g)), false, -1),
            ("w2", new Parameter(randn(new long[] { 3, 5 }, generator: g)), true, -1),
            ("gain", new Parameter(randn(new long[] { 5 }, generator: g)), false, -1),
        ];
    }

    private static FlatParameterGroup Group(List<(string Name, Parameter P, bool Decay, int First)> ps, ICommunicator comm, int stage,
        bool offload = false, long bucket = 8)
    {
        int ranks = stage == 0 ? 1 : comm.Size, rank = stage == 0 ? 0 : comm.Rank;
        return new FlatParameterGroup(FlatPartition.Build(ps, ranks, rank, bucket), comm, CPU, stage, offload, bucket, B1, B2, Eps, Wd);
    }

    [Test]
    public void ParametersAreViewsOfTheFlatValues()
    {
        var ps = Params();
        var before = ps.Select(p => p.P.detach().clone()).ToList();
        using var comm = new LocalCommunicator();
        using var g = Group(ps, comm, 0);
        for (int i = 0; i < ps.Count; i++)
            Assert.That(ps[i].P.detach().allclose(before[i], 0, 0), Is.True, ps[i].Name);
        using (no_grad()) g.Values.add_(1);
        Assert.That(ps[1].P.detach().allclose(before[1] + 1, 0, 0), Is.True, "writing the flat buffer writes the parameter");
        (ps[0].P.square().sum() + ps[3].P.sum()).backward();
        // Decayed first: w1 (24) then w2 (15), then bias and gain; the gradients land in the flat buffer.
        var slice = g.SliceGrad;
        Assert.That(slice.narrow(0, 0, 24).allclose(ps[0].P.detach().view(-1) * 2, 0, 0), Is.True);
        Assert.That(slice.narrow(0, 24 + 15 + 4, 5).allclose(ones(5), 0, 0), Is.True);
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void ReductionSumsGradientsOverRanks(int stage)
    {
        const int ranks = 3;
        var grads = new Tensor[ranks][];
        for (int r = 0; r < ranks; r++) { manual_seed(100 + r); grads[r] = Params().Select(x => randn(x.P.shape)).ToArray(); }
        var sums = Enumerable.Range(0, 4).Select(i => grads.Select(g => g[i]).Aggregate((a, b) => a + b)).ToArray();
        var sumFlat = cat(new[] { 0, 2, 1, 3 }.Select(i => sums[i].view(-1)).ToArray()); // decayed (w1, w2) first

        InProcessGroup.Run(ranks, comm =>
        {
            var ps = Params();
            using var g = Group(ps, comm, stage, bucket: 7); // several buckets
            g.ZeroGrad();
            using (no_grad())
                for (int i = 0; i < ps.Count; i++)
                {
                    if (stage < 2) ps[i].P.grad!.copy_(grads[comm.Rank][i]);
                    else ps[i].P.grad = grads[comm.Rank][i].clone();
                }
            g.Reduce();
            var part = g.Partition;
            long n = Math.Min(part.ShardSize, part.Numel - part.ShardStart);
            Assert.That(g.SliceGrad.narrow(0, 0, n).allclose(sumFlat.narrow(0, part.ShardStart, n), 1e-5, 1e-6), Is.True);
            if (stage == 2)
                Assert.That(ps.All(p => p.P.grad is null), Is.True, "ZeRO 2 frees the full gradients after the reduce-scatter");
        });
    }

    [TestCase(1, 0, false)]
    [TestCase(3, 0, false)]
    [TestCase(3, 1, false)]
    [TestCase(3, 2, false)]
    [TestCase(3, 2, true)]
    public void MatchesTorchSharpAdamW(int ranks, int stage, bool offload)
    {
        const int steps = 5;
        manual_seed(9);
        var grads = Enumerable.Range(0, steps).Select(_ => Params().Select(p => randn(p.P.shape)).ToArray()).ToArray();
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
            using var g = Group(mine, comm, stage, offload);
            for (int s = 0; s < steps; s++)
            {
                g.ZeroGrad();
                // Every rank holds 1/ranks of the gradient: the reduction sums them back to the full one.
                using (no_grad())
                    for (int i = 0; i < mine.Count; i++)
                    {
                        if (stage < 2) mine[i].P.grad!.copy_(grads[s][i] / ranks);
                        else mine[i].P.grad = grads[s][i] / ranks;
                    }
                g.Reduce();
                g.Update(Lr, null);
            }
            Assert.That(g.Step, Is.EqualTo(steps));
            for (int i = 0; i < mine.Count; i++)
            {
                var diff = (mine[i].P - reference[i].P).abs().max().item<float>();
                Assert.That(diff, ranks == 1 ? Is.EqualTo(0) : Is.LessThan(1e-6), $"{mine[i].Name} on rank {comm.Rank}");
            }
            Assert.That(g.StateBytes, Is.EqualTo(g.Partition.ShardSize * 4 * (offload ? 3 : 2)));
        });
    }

    [TestCase(false)]
    [TestCase(true)]
    public void AClippingScaleEqualsScalingTheGradientFirst(bool offload)
    {
        manual_seed(4);
        var grads = Params().Select(p => randn(p.P.shape)).ToArray();
        using var scale = tensor(0.3712f);
        var (fused, scaledFirst) = (Params(), Params());
        using var a = Group(fused, new LocalCommunicator(), 0, offload);
        using var b = Group(scaledFirst, new LocalCommunicator(), 0, offload);
        using (no_grad())
            for (int i = 0; i < grads.Length; i++)
            {
                fused[i].P.grad!.copy_(grads[i]);
                scaledFirst[i].P.grad!.copy_(grads[i]);
            }
        a.Update(Lr, scale);
        using (no_grad()) b.SliceGrad.mul_(scale);
        b.Update(Lr, null);
        for (int i = 0; i < grads.Length; i++)
            Assert.That(TensorCompare.Same(fused[i].P, scaledFirst[i].P), Is.True, fused[i].Name);
        Assert.That(TensorCompare.Same(a.ExpAvgSq, b.ExpAvgSq), Is.True, "second moments");
    }
}
