using TorchSharp;
using ZCode.Model.Moe;
using ZCode.Parallel;
using static TorchSharp.torch;
using static ZCode.Tests.Moe.MoeTestUtil;

namespace ZCode.Tests.Parallel;

/// <summary>
/// An MoE layer whose E = 8 experts are split over an in-process expert-parallel group equals, on every rank, one
/// unsplit layer run on that rank's tokens alone: outputs, statistics, input and router gradients per rank, and each
/// expert's weight gradients summed over the ranks' tokens (the split layer's expert sees every rank's tokens).
/// </summary>
public class ExpertParallelMoeTests
{
    private const int E = 8, D = 6, F = 10;

    private int threads;

    [SetUp]
    public void OneThreadPerRank()
    {
        threads = get_num_threads();
        set_num_threads(1);
    }

    [TearDown]
    public void Restore() => set_num_threads(threads);

    /// <summary>Full-size weights drawn from a private generator, identical on every rank (the global one is shared by
    /// the rank threads, so it is never used for values the test compares).</summary>
    private static Dictionary<string, Tensor> FullWeights()
    {
        using var g = new Generator(7);
        return new Dictionary<string, Tensor>
        {
            ["router.weight"] = randn(new long[] { E, D }, generator: g),
            ["w1"] = randn(new long[] { E, D, F }, generator: g) * 0.4,
            ["b1"] = randn(new long[] { E, F }, generator: g) * 0.1,
            ["w2"] = randn(new long[] { E, F, D }, generator: g) * 0.3,
            ["b2"] = randn(new long[] { E, D }, generator: g) * 0.1,
        };
    }

    private static void Load(MoeLayer layer, Dictionary<string, Tensor> full)
    {
        using var _ = no_grad();
        foreach (var (name, p) in layer.named_parameters())
        {
            var src = full[name];
            p.copy_(name == "router.weight" ? src : src.narrow(0, layer.FirstExpert, layer.LocalExperts));
        }
    }

    private static Tensor Grad(MoeLayer layer, string name) => layer.named_parameters().First(p => p.name == name).parameter.grad!;

    [TestCase(2, 1, "order")]
    [TestCase(2, 2, "order")]
    [TestCase(4, 1, "order")]
    [TestCase(4, 2, "order")]
    [TestCase(2, 1, "random")]
    [TestCase(4, 2, "random")]
    [TestCase(2, 2, "score")]
    public void SplitLayerEqualsUnsplitLayerOnEachRanksTokens(int ranks, int topK, string priority)
    {
        var full = FullWeights();
        var worst = new double[ranks];
        var drops = new long[ranks];
        InProcessGroup.Run(ranks, comm =>
        {
            int rank = comm.Rank;
            using var scope = NewDisposeScope();
            // Ranks route different token counts (so their capacities differ) and mask some tokens.
            long s = 9 + 5 * rank;
            using var g = new Generator(100 + (ulong)rank);
            var xData = randn(new long[] { s, D }, generator: g);
            var upstream = randn(new long[] { s, D }, generator: g);
            var mask = rand(new long[] { s }, generator: g).gt(0.15);

            var cfg = Cfg(E, topK, cf: 1.0, minCapacity: 1, priority: priority);
            using var split = new MoeLayer("moe", D, F, cfg, 0, new ExpertParallelGroup(comm)) { Seed = 31 + rank };
            using var reference = new MoeLayer("moe", D, F, cfg) { Seed = 31 + rank };
            Assert.That(split.LocalExperts, Is.EqualTo(E / ranks));
            Assert.That(split.FirstExpert, Is.EqualTo(rank * E / ranks));
            Load(split, full);
            Load(reference, full);
            split.train();
            reference.train();

            Tensor Run(MoeLayer layer, out Tensor x)
            {
                x = xData.clone().requires_grad_(true);
                var y = layer.forward(x, mask);
                (y * upstream).sum().add(layer.AuxLoss! * 0.3).add(layer.ZLoss! * 0.2).backward();
                return y;
            }
            var ySplit = Run(split, out var xSplit);
            var yRef = Run(reference, out var xRef);

            Assert.That(split.LastStats!.TokensPerExpert, Is.EqualTo(reference.LastStats!.TokensPerExpert));
            Assert.That(split.LastStats.TokensPerExpert, Has.Length.EqualTo(E), "statistics stay per global expert");
            Assert.That(split.LastStats.Dropped, Is.EqualTo(reference.LastStats.Dropped));
            drops[rank] = reference.LastStats.Dropped;

            double diff = Math.Max(MaxDiff(ySplit, yRef), MaxDiff(xSplit.grad!, xRef.grad!));
            diff = Math.Max(diff, MaxDiff(Grad(split, "router.weight"), Grad(reference, "router.weight")));
            // An expert's gradient in the split layer collects every rank's tokens: sum the reference's over ranks.
            foreach (var name in new[] { "w1", "b1", "w2", "b2" })
            {
                var summed = Grad(reference, name).clone();
                comm.AllReduce(summed);
                diff = Math.Max(diff, MaxDiff(Grad(split, name), summed.narrow(0, split.FirstExpert, split.LocalExperts)));
            }
            worst[rank] = diff;
        });
        Assert.That(worst, Is.All.LessThan(1e-5));
        Assert.That(drops.Sum(), Is.GreaterThan(0), "the case must exercise capacity dropping");
    }

    [Test]
    public void ARankWithoutTokensStillServesTheOthersExperts()
    {
        var full = FullWeights();
        var worst = new double[2];
        InProcessGroup.Run(2, comm =>
        {
            using var scope = NewDisposeScope();
            long s = comm.Rank == 0 ? 12 : 0;
            using var g = new Generator(5);
            var xData = randn(new long[] { s, D }, generator: g);
            var cfg = Cfg(E, 2, cf: 1.0, minCapacity: 1);
            using var split = new MoeLayer("moe", D, F, cfg, 0, new ExpertParallelGroup(comm));
            using var reference = new MoeLayer("moe", D, F, cfg);
            Load(split, full);
            Load(reference, full);
            var x = xData.clone().requires_grad_(true);
            var y = split.forward(x, null);
            y.sum().backward();
            var xr = xData.clone().requires_grad_(true);
            var yr = reference.forward(xr, null);
            if (s > 0)
            {
                yr.sum().backward();
                worst[comm.Rank] = Math.Max(MaxDiff(y, yr), MaxDiff(x.grad!, xr.grad!));
            }
            Assert.That(y.shape, Is.EqualTo(new[] { s, (long)D }));
        });
        Assert.That(worst, Is.All.LessThan(1e-5));
    }

    [Test]
    public void EvalModeAndNoGradWork()
    {
        var full = FullWeights();
        var worst = new double[2];
        InProcessGroup.Run(2, comm =>
        {
            using var scope = NewDisposeScope();
            using var g = new Generator(9 + (ulong)comm.Rank);
            var x = randn(new long[] { 3, 5, D }, generator: g);
            var cfg = Cfg(E, 1, cf: 1.0, evalCf: 2.0, priority: "random");
            using var split = new MoeLayer("moe", D, F, cfg, 0, new ExpertParallelGroup(comm));
            using var reference = new MoeLayer("moe", D, F, cfg);
            Load(split, full);
            Load(reference, full);
            split.eval();
            reference.eval();
            using var _ = no_grad();
            worst[comm.Rank] = MaxDiff(split.forward(x, null), reference.forward(x, null));
        });
        Assert.That(worst, Is.All.LessThan(1e-5));
    }

    [Test]
    public void InitialExpertsAreTheSliceOfAnUnsplitLayersExperts()
    {
        var cfg = Cfg(E, 1);
        manual_seed(3);
        using var whole = new MoeLayer("moe", D, F, cfg);
        var same = new bool[4];
        InProcessGroup.Run(4, comm =>
        {
            MoeLayer part;
            lock (ZCode.Training.GlobalGenerator.Gate)
            {
                manual_seed(3); // the global generator is shared by the rank threads: draw one rank at a time
                part = new MoeLayer("moe", D, F, cfg, 0, new ExpertParallelGroup(comm));
            }
            using (part)
                same[comm.Rank] = whole.named_parameters().Zip(part.named_parameters()).All(pair =>
                {
                    var (name, w) = pair.First;
                    var local = name == "router.weight" ? w : w.narrow(0, part.FirstExpert, part.LocalExperts);
                    return local.shape.SequenceEqual(pair.Second.parameter.shape) && MaxDiff(local, pair.Second.parameter) == 0;
                });
        });
        Assert.That(same, Is.All.True);
    }

    [Test]
    public void GroupSizeMustDivideTheExperts()
    {
        var e = Assert.Throws<AggregateException>(() => InProcessGroup.Run(3, comm =>
        {
            using var _ = new MoeLayer("moe", D, F, Cfg(E, 1), 0, new ExpertParallelGroup(comm));
        }));
        Assert.That(e!.InnerException!.Message, Does.Contain("must divide the number of experts 8"));
    }

    [Test]
    public void AllToAllGradientIsTheReverseExchange()
    {
        var ok = new bool[3];
        InProcessGroup.Run(3, comm =>
        {
            using var scope = NewDisposeScope();
            int r = comm.Rank;
            // Row j of rank r holds 10r + j; after the exchange rank r's row j came from rank j's row r.
            var x = (arange(3, dtype: ScalarType.Float32) + 10 * r).view(3, 1).expand(3, 2).contiguous().requires_grad_(true);
            var y = DifferentiableAllToAll.Apply(x, comm);
            var got = Floats(y.select(1, 0));
            var weights = (arange(3, dtype: ScalarType.Float32) + 1 + 100 * r).view(3, 1); // d loss / d y[j] = 100r + j + 1
            (y * weights).sum().backward();
            // x[j] went to rank j as its row r, which that rank weighs 100j + r + 1.
            var grad = Floats(x.grad!.select(1, 0));
            ok[r] = got.SequenceEqual(Enumerable.Range(0, 3).Select(j => 10f * j + r))
                    && grad.SequenceEqual(Enumerable.Range(0, 3).Select(j => 100f * j + r + 1));
        });
        Assert.That(ok, Is.All.True);
    }
}
