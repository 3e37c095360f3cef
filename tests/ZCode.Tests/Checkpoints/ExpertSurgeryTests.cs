using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Checkpoints;
using ZCode.Cli;
using ZCode.Config;
using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Tests.Checkpoints;

/// <summary>Aggregation of Experts and expert pruning on small checkpoints.</summary>
public class ExpertSurgeryTests
{
    private string root = "";

    [SetUp]
    public void Create() => Directory.CreateDirectory(root = Path.Combine(Path.GetTempPath(), "zcode-surgery-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void Remove() => Directory.Delete(root, recursive: true);

    private string Saved(string name, ZCodeConfig cfg, long seed)
    {
        var (model, opt) = CheckpointStoreTests.Trained(cfg, 1, seed);
        var dir = Path.Combine(root, name);
        using var scope = NewDisposeScope();
        var manifest = CheckpointStoreTests.Manifest(cfg);
        opt.Describe(manifest);
        CheckpointStore.WriteDirectory(dir, model, manifest, extraFiles: opt.StateFiles(true, true));
        return dir;
    }

    private static Tensor P(Seq2SeqTransformer m, int layer, string param) => CheckpointFormat.ExpertParameter(CheckpointFormat.MoeLayers(m)[layer], param);
    private static Tensor Router(Seq2SeqTransformer m, int layer) => CheckpointFormat.MoeLayers(m)[layer].Layer.Router.weight!;

    [Test]
    public void IdenticalInputsAveragedGiveIdenticalExpertPairsAndEqualRouterLogits()
    {
        var a = Saved("a", CheckpointStoreTests.SmallConfig(4), 3);
        var c = Path.Combine(root, "c");
        var cfg = ExpertSurgery.Aggregate([a, a], c, ExpertSurgery.SharedMode.Average);
        Assert.That(cfg.Model.Moe.Experts, Is.EqualTo(8));
        var src = CheckpointReader.Load(a).Model;
        var agg = CheckpointReader.Load(c);
        Assert.That(agg.Config.Model.Moe.Experts, Is.EqualTo(8));
        Assert.That(CheckpointLoader.ExpertCounts(agg.Manifest), Is.EqualTo(new[] { 8, 8 }));
        Assert.That(agg.Manifest["files"]!.AsObject().ContainsKey(CheckpointFormat.OptimizerSharedFile), Is.False);
        Assert.That(agg.Manifest["note"]!.GetValue<string>(), Does.Contain("optimizer state dropped"));
        var x = randn(10, 16);
        for (int l = 0; l < 2; l++)
        {
            for (int i = 0; i < 4; i++)
                foreach (var p in CheckpointFormat.ExpertParams)
                {
                    Assert.That(TensorCompare.Same(P(agg.Model, l, p)[i], P(agg.Model, l, p)[4 + i]), Is.True, $"L{l} {p} pair {i}");
                    Assert.That(TensorCompare.Same(P(agg.Model, l, p)[i], P(src, l, p)[i]), Is.True);
                }
            var logits = nn.functional.linear(x, Router(agg.Model, l));
            Assert.That(TensorCompare.Same(logits.narrow(1, 0, 4), logits.narrow(1, 4, 4)), Is.True, "router logits of each pair are equal");
        }
        // The average of two equal tensors is the tensor itself (x/2 + x/2 is exact in floating point).
        var shared = src.state_dict();
        foreach (var (name, t) in agg.Model.state_dict().Where(kv => !kv.Key.Contains(".moe.")))
            Assert.That(TensorCompare.Same(t, shared[name]), Is.True, name);
    }

    [Test]
    public void DifferentInputsConcatenateInOrder()
    {
        var a = Saved("a", CheckpointStoreTests.SmallConfig(4), 3);
        var b = Saved("b", CheckpointStoreTests.SmallConfig(2), 4);
        var c = Path.Combine(root, "c");
        ExpertSurgery.Aggregate([a, b], c, ExpertSurgery.SharedMode.First);
        var ma = CheckpointReader.Load(a).Model;
        var mb = CheckpointReader.Load(b).Model;
        var mc = CheckpointReader.Load(c).Model;
        for (int l = 0; l < 2; l++)
        {
            for (int i = 0; i < 2; i++)
                Assert.That(TensorCompare.Same(P(mc, l, "w1")[4 + i], P(mb, l, "w1")[i]), Is.True, "B's expert i is expert E_A + i");
            Assert.That(TensorCompare.Same(Router(mc, l).narrow(0, 4, 2), Router(mb, l)), Is.True);
            Assert.That(TensorCompare.Same(Router(mc, l).narrow(0, 0, 4), Router(ma, l)), Is.True);
        }
        var first = ma.state_dict();
        foreach (var (name, t) in mc.state_dict().Where(kv => !kv.Key.Contains(".moe.")))
            Assert.That(TensorCompare.Same(t, first[name]), Is.True, "--shared first: " + name);
    }

    [Test]
    public void IncompatibleInputsAreBadInputNamingTheFirstDifference()
    {
        var a = Saved("a", CheckpointStoreTests.SmallConfig(4), 3);
        var wide = CheckpointStoreTests.SmallConfig(4);
        wide.Model.DModel = 32;
        var b = Saved("b", wide, 3);
        var err = new StringWriter();
        var code = CliApp.Run(["aggregate-experts", "--from", a, "--from", b, "--out", Path.Combine(root, "c")], new StringWriter(), err);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.ToString(), Does.Contain("model.d_model is 32").And.Contain(a));
        Assert.That(Directory.Exists(Path.Combine(root, "c")), Is.False);
    }

    [Test]
    public void PruningKeepsTheMostUsedExpertsAndTheirRouterRows()
    {
        Assert.That(ExpertSurgery.MostUsed([5, 100, 0, 50, 7, 80, 1, 2], 4), Is.EqualTo(new[] { 1, 3, 4, 5 }));
        Assert.That(ExpertSurgery.MostUsed([3, 3, 3, 3], 2), Is.EqualTo(new[] { 0, 1 }), "ties: lower id first");

        var a = Saved("a", CheckpointStoreTests.SmallConfig(8), 3);
        double[][] usage = [[5, 100, 0, 50, 7, 80, 1, 2], [9, 8, 7, 6, 5, 4, 3, 200]];
        var keep = usage.Select(u => ExpertSurgery.MostUsed(u, 4)).ToArray();
        Assert.That(keep[1], Is.EqualTo(new[] { 0, 1, 2, 7 }));
        var p = Path.Combine(root, "p");
        ExpertSurgery.Prune(a, keep, usage, p, "constructed");
        var src = CheckpointReader.Load(a).Model;
        var pruned = CheckpointReader.Load(p);
        Assert.That(pruned.Config.Model.Moe.Experts, Is.EqualTo(4));
        for (int l = 0; l < 2; l++)
            for (int j = 0; j < 4; j++)
            {
                foreach (var name in CheckpointFormat.ExpertParams)
                    Assert.That(TensorCompare.Same(P(pruned.Model, l, name)[j], P(src, l, name)[keep[l][j]]), Is.True, $"L{l} {name} {j}");
                Assert.That(TensorCompare.Same(Router(pruned.Model, l)[j], Router(src, l)[keep[l][j]]), Is.True, $"L{l} router row {j}");
            }
        var kept = pruned.Manifest["pruned_from"]!["kept_experts"].Deserialize<int[][]>();
        Assert.That(kept, Is.EqualTo(keep));
    }

    [Test]
    public void PruneAndInspectEndToEndOnM3Tiny()
    {
        var run = Path.Combine(root, "run");
        var code = CliApp.Run(["train", "--set", "model.moe.experts=8", "--set", "train.max_steps=2", "--set", "train.tokens_per_batch=256",
            "--set", "train.threads=1", "--output", run], new StringWriter(), new StringWriter());
        Assert.That(code, Is.EqualTo(0));
        var pruned = Path.Combine(root, "pruned");
        var stdout = new StringWriter();
        var err = new StringWriter();
        code = CliApp.Run(["prune-experts", "--checkpoint", Path.Combine(run, "checkpoints", "latest"), "--keep", "4", "--langs", "deu_Latn",
            "--out", pruned], stdout, err);
        Assert.That(code, Is.EqualTo(0), err.ToString());
        Assert.That(stdout.ToString(), Does.Contain("L00: usage").And.Contain("-> keep"));

        stdout = new StringWriter();
        code = CliApp.Run(["inspect", pruned, "--json"], stdout, new StringWriter());
        Assert.That(code, Is.EqualTo(0));
        var report = JsonNode.Parse(stdout.ToString())!;
        Assert.That(report["experts"]!.AsArray().Select(e => e!.GetValue<int>()), Is.EqualTo(new[] { 4, 4 }));
        Assert.That(report["files_ok"]!.GetValue<bool>(), Is.True);
        Assert.That(report["total_params"]!.GetValue<long>(), Is.EqualTo(ParameterCount.Of(CheckpointReader.Load(pruned).Config.Model).Total));
        Assert.That(report["config"]!["experts"]!.GetValue<int>(), Is.EqualTo(4));

        // The pruned model starts a new run directly: step 0, fresh optimizer, 4 experts.
        var tuned = Path.Combine(root, "tuned");
        err = new StringWriter();
        code = CliApp.Run(["train", "--init-from", pruned, "--set", "train.max_steps=2", "--set", "train.tokens_per_batch=256",
            "--set", "train.threads=1", "--output", tuned], new StringWriter(), err);
        Assert.That(code, Is.EqualTo(0), err.ToString());
        var tunedCkpt = CheckpointReader.Load(tuned);
        Assert.That((tunedCkpt.Step, tunedCkpt.Config.Model.Moe.Experts), Is.EqualTo((2L, 4)));
        Assert.That(File.ReadAllText(Path.Combine(tuned, "train.log")), Does.Contain("initialised weights from"));

        // inspect on a run's latest, text form, and a damaged file is reported with exit 1.
        var latest = Path.Combine(run, "checkpoints", "latest");
        stdout = new StringWriter();
        Assert.That(CliApp.Run(["inspect", latest], stdout, new StringWriter()), Is.EqualTo(0));
        Assert.That(stdout.ToString(), Does.Contain("step 2").And.Contain("experts per MoE layer: [8, 8]").And.Contain("expert load"));
        var file = Path.Combine(CheckpointReader.ResolveDirectory(latest), "experts-L01.safetensors");
        File.AppendAllText(file, "x");
        stdout = new StringWriter();
        Assert.That(CliApp.Run(["inspect", latest, "--json"], stdout, new StringWriter()), Is.EqualTo(1));
        Assert.That(JsonNode.Parse(stdout.ToString())!["files_ok"]!.GetValue<bool>(), Is.False);
    }
}
