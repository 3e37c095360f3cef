using System.Text.Json.Nodes;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Training.Optimization;
using static TorchSharp.torch;

namespace ZCode.Tests.Checkpoints;

/// <summary>v1 checkpoints in process: round trip of weights and AdamW state, global-id expert loading,
/// fault injection at every stage of the writer, corruption fallback and retention.</summary>
public class CheckpointStoreTests
{
    private string output = "";

    [SetUp]
    public void Create() => output = Path.Combine(Path.GetTempPath(), "zcode-ckpt-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void Remove()
    {
        CheckpointStore.FaultHook = null;
        SafeTensors.AfterHeaderHook = null;
        if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
    }

    internal static ZCodeConfig SmallConfig(int experts = 4)
    {
        var cfg = new ZCodeConfig();
        cfg.Model.VocabSize = 64;
        cfg.Model.DModel = 16;
        cfg.Model.FfnDim = 32;
        cfg.Model.Heads = 2;
        cfg.Model.Moe.Experts = experts;
        cfg.Data.SpmModel = Tests.Data.DataTestPaths.SpmModel; // aggregation compares the models of its inputs
        return cfg;
    }

    internal static JsonObject Manifest(ZCodeConfig cfg) => new()
    {
        ["config"] = ConfigWriter.ToYaml(cfg), ["config_base_dir"] = Tests.Data.DataTestPaths.RepoRoot,
    };

    internal static (Seq2SeqTransformer Model, AdamWOptimizer Opt) Trained(ZCodeConfig cfg, int steps, long seed = 3)
    {
        manual_seed(seed);
        var model = new Seq2SeqTransformer(cfg.Model, 0);
        var opt = new AdamWOptimizer(model, cfg.Train, cfg.Parallel, ParallelLayout.Single());
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var src = randint(1, cfg.Model.VocabSize, new long[] { 4, 7 });
            var tgt = randint(1, cfg.Model.VocabSize, new long[] { 4, 6 });
            opt.ZeroGrad();
            model.call(src, tgt).square().mean().backward();
            opt.Step(cfg.Train.Lr, 0);
        }
        return (model, opt);
    }

    /// <summary>Saves the model and, when given, the optimizer's state as the trainer does.</summary>
    internal static string Save(CheckpointStore store, long step, Seq2SeqTransformer model, ITrainingOptimizer? opt, JsonObject manifest,
        CheckpointGroup? group = null)
    {
        using var scope = NewDisposeScope();
        opt?.Describe(manifest);
        return store.Save(step, model, manifest, group, opt?.StateFiles(group?.WritesShared ?? true, group?.WritesExperts ?? true));
    }

    /// <summary>Every tensor of the optimizer's saved state by MoE layer ("L01", from its file name; the file name for
    /// other files) and name, whatever expert blocks the files hold (views and scalars in the caller's dispose scope).</summary>
    internal static Dictionary<string, Tensor> NamedState(ITrainingOptimizer opt, bool writesShared = true, bool writesExperts = true)
        => opt.StateFiles(writesShared, writesExperts)
            .SelectMany(f => f.Tensors.Select(t => (Key: $"{LayerOf(f.Name)}/{t.Name}", t.Tensor)))
            .ToDictionary(t => t.Key, t => t.Tensor);

    private static string LayerOf(string file)
        => System.Text.RegularExpressions.Regex.Match(file, @"experts-(L\d+)") is { Success: true } m ? m.Groups[1].Value : file;

    private static void AssertSameState(Seq2SeqTransformer a, ITrainingOptimizer oa, Seq2SeqTransformer b, ITrainingOptimizer ob)
    {
        using var scope = NewDisposeScope();
        var pb = b.state_dict();
        foreach (var (name, t) in a.state_dict())
            Assert.That(t.eq(pb[name]).all().item<bool>(), Is.True, name);
        var sb = NamedState(ob);
        var sa = NamedState(oa);
        Assert.That(sb.Keys, Is.EquivalentTo(sa.Keys));
        foreach (var (name, t) in sa)
            Assert.That(t.eq(sb[name]).all().item<bool>(), Is.True, name);
    }

    [Test]
    public void WeightsAndOptimizerStateRoundTripExactly()
    {
        var cfg = SmallConfig();
        var (model, opt) = Trained(cfg, 3);
        var dir = Save(new CheckpointStore(output, 3), 3, model, opt, Manifest(cfg));
        Assert.That(Directory.GetFiles(dir).Select(Path.GetFileName), Is.EquivalentTo(new[]
        {
            "manifest.json", "shared.safetensors", "experts-L00.safetensors", "experts-L01.safetensors",
            "optimizer-shared.safetensors", "optimizer-experts-L00.safetensors", "optimizer-experts-L01.safetensors",
        }));
        using (var r = new SafeTensors.Reader(Path.Combine(dir, "experts-L01.safetensors")))
            Assert.That(r.Tensors.Keys, Does.Contain("expert.3.w1").And.Contain("expert.0.b2"));

        var (fresh, freshOpt) = Trained(cfg, 1, seed: 99);
        CheckpointLoader.LoadWeights(dir, fresh);
        freshOpt.Load(dir, CheckpointReader.ReadVerifiedManifest(dir));
        AssertSameState(model, opt, fresh, freshOpt);
    }

    [Test]
    public void ExpertsLoadByGlobalId()
    {
        var cfg = SmallConfig(4);
        var (model, _) = Trained(cfg, 1);
        var dir = new CheckpointStore(output, 3).Save(1, model, new JsonObject());
        var (two, _) = Trained(SmallConfig(2), 0, seed: 5);
        int[] ids = [3, 1];
        CheckpointLoader.LoadWeights(dir, two, (_, _) => ids);
        var src = CheckpointFormat.MoeLayers(model);
        var dst = CheckpointFormat.MoeLayers(two);
        for (int l = 0; l < src.Count; l++)
            foreach (var p in CheckpointFormat.ExpertParams)
                for (int j = 0; j < ids.Length; j++)
                    Assert.That(CheckpointFormat.ExpertParameter(dst[l], p)[j].eq(CheckpointFormat.ExpertParameter(src[l], p)[ids[j]]).all().item<bool>(),
                        Is.True, $"layer {l} {p} local {j}");
    }

    [TestCase("header"), TestCase("shared"), TestCase("experts"), TestCase("optimizer"), TestCase("manifest"),
     TestCase("rename"), TestCase("latest")]
    public void CrashDuringWriteKeepsThePreviousCheckpointUsable(string stage)
    {
        var cfg = SmallConfig();
        var (model, opt) = Trained(cfg, 1);
        var store = new CheckpointStore(output, 3);
        Save(store, 10, model, opt, Manifest(cfg));
        var crash = new IOException("injected crash at " + stage);
        if (stage == "header")
            SafeTensors.AfterHeaderHook = p => { if (p.Contains("experts-L01")) throw crash; };
        else
            CheckpointStore.FaultHook = s => { if (s == stage) throw crash; };
        // The model moves on, so a half-written step 20 would differ from step 10.
        Trained(cfg, 0);
        Assert.Throws<IOException>(() => Save(store, 20, model, opt, Manifest(cfg)));
        CheckpointStore.FaultHook = null;
        SafeTensors.AfterHeaderHook = null;

        var warnings = new List<string>();
        var found = CheckpointStore.FindLatestValid(store.Root, warnings.Add);
        // Only once the complete directory has been renamed into place does step 20 count.
        var expected = stage == "latest" ? "step-0000020" : "step-0000010";
        Assert.That(Path.GetFileName(found), Is.EqualTo(expected));
        Assert.That(warnings, Is.Empty);
        Assert.That(CheckpointReader.Load(found!).Step, Is.EqualTo(stage == "latest" ? 20 : 10));

        // The next save of the same step succeeds over the debris.
        Save(store, 20, model, opt, Manifest(cfg));
        Assert.That(Path.GetFileName(CheckpointStore.FindLatestValid(store.Root, warnings.Add)), Is.EqualTo("step-0000020"));
        Assert.That(Directory.GetDirectories(store.Root).Select(Path.GetFileName), Is.EquivalentTo(new[] { "step-0000010", "step-0000020" }));
    }

    [Test]
    public void CorruptNewestIsReportedAndSkipped()
    {
        var cfg = SmallConfig();
        var (model, opt) = Trained(cfg, 1);
        var store = new CheckpointStore(output, 3);
        Save(store, 10, model, opt, Manifest(cfg));
        var newest = Save(store, 20, model, opt, Manifest(cfg));
        var file = Path.Combine(newest, "experts-L00.safetensors");
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]); // truncated
        var warnings = new List<string>();
        Assert.That(Path.GetFileName(CheckpointStore.FindLatestValid(store.Root, warnings.Add)), Is.EqualTo("step-0000010"));
        Assert.That(warnings, Has.Count.EqualTo(1));
        Assert.That(warnings[0], Does.Contain("step-0000020").And.Contain("truncated"));

        bytes[bytes.Length / 2] ^= 0x55; // same size, flipped bits
        File.WriteAllBytes(file, bytes);
        warnings.Clear();
        Assert.That(Path.GetFileName(CheckpointStore.FindLatestValid(store.Root, warnings.Add)), Is.EqualTo("step-0000010"));
        Assert.That(warnings[0], Does.Contain("checksum mismatch"));
    }

    [Test]
    public void KeepsLastNPlusEveryKth()
    {
        var (model, _) = Trained(SmallConfig(), 0);
        var store = new CheckpointStore(output, keepLast: 2, keepEvery: 30);
        foreach (var s in new[] { 10, 20, 30, 40, 50, 60, 70 })
            store.Save(s, model, new JsonObject());
        Assert.That(store.List().Select(d => CheckpointStore.StepOf(d)), Is.EqualTo(new long?[] { 30, 60, 70 }));
        Assert.That(File.ReadAllText(Path.Combine(store.Root, "latest")).Trim(), Is.EqualTo("step-0000070"));
    }
}
