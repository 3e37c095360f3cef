using System.Text.Json.Nodes;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Tests.Parallel;
using ZCode.Training.Optimization;
using static TorchSharp.torch;

namespace ZCode.Tests.Checkpoints;

/// <summary>
/// Expert checkpoints reshard: ranks of an expert-parallel group each write their own expert block (files named by
/// global ids), and a model of any expert-parallel size, single process included, reads back exactly its experts,
/// weights and AdamW state alike.
/// </summary>
public class ExpertReshardingTests
{
    private const int Experts = 8;
    private string output = "";
    private int threads;

    [SetUp]
    public void Create()
    {
        output = Path.Combine(Path.GetTempPath(), "zcode-reshard-" + Guid.NewGuid().ToString("N"));
        threads = get_num_threads();
        set_num_threads(1);
    }

    [TearDown]
    public void Remove()
    {
        set_num_threads(threads);
        if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
    }

    /// <summary>The single-process model (one AdamW step taken, so moments are non-zero) every case is compared with.</summary>
    private static (Seq2SeqTransformer Model, AdamWOptimizer Opt, ZCodeConfig Cfg) Reference()
    {
        var cfg = CheckpointStoreTests.SmallConfig(Experts);
        var (model, opt) = CheckpointStoreTests.Trained(cfg, 1);
        return (model, opt, cfg);
    }

    /// <summary>This rank's share of the reference: shared tensors whole, expert stacks [first, first+local).</summary>
    private static Tensor Share(Tensor full, string name, Seq2SeqTransformer model, HashSet<string> expertNames)
    {
        if (!expertNames.Contains(name)) return full;
        var layer = CheckpointFormat.MoeLayers(model).First(l => name.StartsWith(l.Prefix + ".", StringComparison.Ordinal)).Layer;
        return full.narrow(0, layer.FirstExpert, layer.LocalExperts);
    }

    private static HashSet<string> ExpertNames(Seq2SeqTransformer model) => model.ExpertParameters().Select(p => p.Name).ToHashSet();

    /// <summary>Largest difference between a (possibly expert-parallel) model and optimizer and the reference's share.
    /// Optimizer state is compared by its saved names, which address experts by global id.</summary>
    private static double Difference(Seq2SeqTransformer model, AdamWOptimizer opt, Seq2SeqTransformer reference, AdamWOptimizer referenceOpt)
    {
        using var scope = NewDisposeScope();
        var expertNames = ExpertNames(model);
        var refParams = reference.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        double worst = 0;
        foreach (var (name, p) in model.named_parameters())
            worst = Math.Max(worst, Moe.MoeTestUtil.MaxDiff(p, Share(refParams[name], name, model, expertNames)));
        var refState = CheckpointStoreTests.NamedState(referenceOpt);
        var state = CheckpointStoreTests.NamedState(opt);
        if (state.Count != refState.Count - (Experts - model.MoeLayers[0].LocalExperts) * model.MoeLayers.Count * 12)
            return double.PositiveInfinity;
        foreach (var (name, t) in state)
            worst = Math.Max(worst, Moe.MoeTestUtil.MaxDiff(t.to(ScalarType.Float64), refState[name].to(ScalarType.Float64)));
        return worst;
    }

    /// <summary>Builds a model of expert-parallel size <paramref name="p"/> (or runs single-process for 1) on each rank.</summary>
    private static void OnRanks(int p, Action<Seq2SeqTransformer, AdamWOptimizer, ICommunicator?> body, ZCodeConfig cfg)
    {
        if (p == 1)
        {
            using var model = new Seq2SeqTransformer(cfg.Model, 0);
            using var single = ParallelLayout.Single();
            using var opt = new AdamWOptimizer(model, cfg.Train, cfg.Parallel, single);
            body(model, opt, null);
            return;
        }
        InProcessGroup.Run(p, comm =>
        {
            using var layout = ParallelLayout.Create(comm, p);
            using var model = new Seq2SeqTransformer(cfg.Model, 0, layout.ModelExpertGroup);
            using var opt = new AdamWOptimizer(model, cfg.Train, cfg.Parallel, layout);
            body(model, opt, comm);
        });
    }

    [TestCase(2, 1)]
    [TestCase(2, 4)]
    [TestCase(1, 2)]
    [TestCase(1, 4)]
    [TestCase(4, 2)]
    public void SavedAtOneExpertParallelSizeLoadsAtAnother(int saveP, int loadP)
    {
        var (reference, referenceOpt, cfg) = Reference();
        // The reference, saved by one process; every rank of the save size starts from it, weights and optimizer state.
        var origin = CheckpointStoreTests.Save(new CheckpointStore(Path.Combine(output, "origin"), 3), 1, reference, referenceOpt,
            CheckpointStoreTests.Manifest(cfg));
        string? dir = null;
        OnRanks(saveP, (model, opt, comm) =>
        {
            CheckpointLoader.LoadWeights(origin, model);
            opt.Load(origin, CheckpointReader.ReadVerifiedManifest(origin));
            var group = comm is null ? null : CheckpointGroup.For(comm, model.ExpertGroup);
            var saved = CheckpointStoreTests.Save(new CheckpointStore(output, 3), 1, model, opt, CheckpointStoreTests.Manifest(cfg), group);
            if (comm is null || comm.Rank == 0) dir = saved;
        }, cfg);

        var names = ((JsonObject)CheckpointReader.ReadVerifiedManifest(dir!)["files"]!).Select(kv => kv.Key).ToList();
        var expertFiles = names.Where(n => n.StartsWith("experts-L00", StringComparison.Ordinal)).Order().ToList();
        Assert.That(expertFiles, Is.EqualTo(saveP == 1
            ? new[] { "experts-L00.safetensors" }
            : Enumerable.Range(0, saveP).Select(r => CheckpointFormat.ExpertFile(0, r * Experts / saveP, Experts / saveP, Experts)).ToArray()));
        Assert.That(names, Does.Contain("optimizer-experts-L01" + (saveP == 1 ? "" : "-e000-" + $"{Experts / saveP - 1:D3}") + ".safetensors"));

        var worst = new double[loadP];
        OnRanks(loadP, (model, opt, comm) =>
        {
            CheckpointLoader.LoadWeights(dir!, model);
            opt.Load(dir!, CheckpointReader.ReadVerifiedManifest(dir!));
            worst[comm?.Rank ?? 0] = Difference(model, opt, reference, referenceOpt);
        }, cfg);
        Assert.That(worst, Is.All.EqualTo(0.0));

        // Single-process readers (inspect, eval, prune) see the full model whatever size wrote it.
        var loaded = CheckpointReader.Load(dir!);
        Assert.That(loaded.Model.MoeLayers.Select(l => l.LocalExperts), Is.All.EqualTo(Experts));
        Assert.That(CheckpointInspector.Report(dir!)["files_ok"]!.GetValue<bool>(), Is.True);
    }

    [Test]
    public void WriterFlagsThatWouldWriteAnExpertBlockTwiceAreRefusedBeforeWriting()
    {
        var cfg = CheckpointStoreTests.SmallConfig(Experts);
        var e = Assert.Throws<AggregateException>(() => InProcessGroup.Run(2, comm =>
        {
            // Two replicas of a single-process model (data parallel only) must not both write the experts.
            using var model = new Seq2SeqTransformer(cfg.Model, 0);
            new CheckpointStore(output, 3).Save(1, model, CheckpointStoreTests.Manifest(cfg), new CheckpointGroup(comm, comm.Rank == 0, true));
        }));
        Assert.That(e!.InnerException!.Message, Does.Contain("would both write"));
        Assert.That(Directory.Exists(Path.Combine(output, "checkpoints", "step-0000001.tmp")), Is.False);
    }

    [Test]
    public void ACheckpointMissingAnExpertBlockIsRefused()
    {
        var cfg = CheckpointStoreTests.SmallConfig(Experts);
        var e = Assert.Throws<AggregateException>(() => InProcessGroup.Run(2, comm =>
        {
            using var model = new Seq2SeqTransformer(cfg.Model, 0, new ExpertParallelGroup(comm));
            new CheckpointStore(output, 3).Save(1, model, CheckpointStoreTests.Manifest(cfg), new CheckpointGroup(comm, comm.Rank == 0, comm.Rank == 0));
        }));
        Assert.That(e!.InnerException!.Message, Does.Contain("expert 4 of MoE layer 0 would be written 0 times"));
    }
}
