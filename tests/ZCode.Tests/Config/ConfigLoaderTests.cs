using ZCode.Config;

namespace ZCode.Tests.Config;

/// <summary>Loading: defaults, binding of every kind of value, overrides, base directory.</summary>
[TestFixture]
public class ConfigLoaderTests
{
    private ConfigTestSupport _files = null!;

    [SetUp]
    public void SetUp() => _files = new ConfigTestSupport();

    [TearDown]
    public void TearDown() => _files.Dispose();

    [Test]
    public void EmbeddedDefault_IsConfigsM3Tiny()
    {
        var onDisk = File.ReadAllText(ConfigTestSupport.ShippedConfig("m3-tiny.yaml"));
        Assert.That(ConfigLoader.DefaultText(), Is.EqualTo(onDisk));
    }

    [Test]
    public void Default_EqualsSchemaDefaults()
    {
        var loaded = ConfigLoader.LoadDefault();
        var schema = new ZCodeConfig();
        ConfigTestSupport.AssertEqual(schema.Model, loaded.Model, "model");
        ConfigTestSupport.AssertEqual(schema.Tasks, loaded.Tasks, "tasks");
        ConfigTestSupport.AssertEqual(schema.Train, loaded.Train, "train");
        ConfigTestSupport.AssertEqual(schema.Parallel, loaded.Parallel, "parallel");
        ConfigTestSupport.AssertEqual(schema.Eval, loaded.Eval, "eval");
        Assert.That(loaded.Data.MaxLen, Is.EqualTo(schema.Data.MaxLen));
        Assert.That(loaded.Data.Temperature, Is.EqualTo(schema.Data.Temperature));
    }

    [Test]
    public void Default_DataPathsResolveIntoTheCheckout()
    {
        var config = ConfigLoader.LoadDefault();
        var root = ConfigTestSupport.RepoRoot;
        Assert.That(config.BaseDirectory, Is.EqualTo(Path.Combine(root, "configs")));
        Assert.That(config.ResolvePath(config.Data.SpmModel), Is.EqualTo(Path.Combine(root, "data-samples", "spm.model")));
        Assert.That(config.ResolvePath(config.Data.ShardDir), Is.EqualTo(Path.Combine(root, "data-samples", "shards")));
    }

    [Test]
    public void File_BaseDirectoryIsItsDirectory()
    {
        var path = _files.Write("data:\n  spm_model: vocab/spm.model\n");
        var config = ConfigLoader.LoadFile(path);
        Assert.That(config.BaseDirectory, Is.EqualTo(_files.Dir));
        Assert.That(config.ResolvePath(config.Data.SpmModel), Is.EqualTo(Path.Combine(_files.Dir, "vocab", "spm.model")));
        Assert.That(config.ResolvePath("/abs/x.model"), Is.EqualTo(Path.GetFullPath("/abs/x.model")));
    }

    [TestCase("")]
    [TestCase("# nothing but a comment\n")]
    [TestCase("model:\ntrain:\n")]
    public void EmptyFileOrSections_KeepDefaults(string yaml)
    {
        var config = ConfigLoader.LoadText(yaml, "empty.yaml");
        ConfigTestSupport.AssertEqual(new ZCodeConfig(), config);
    }

    [Test]
    public void MissingKeys_KeepDefaults_WrittenKeysBind()
    {
        var config = ConfigLoader.LoadText("model:\n  d_model: 64\n  moe:\n    top_k: 2\n", "t.yaml");
        Assert.That(config.Model.DModel, Is.EqualTo(64));
        Assert.That(config.Model.Moe.TopK, Is.EqualTo(2));
        Assert.That(config.Model.Heads, Is.EqualTo(new ModelConfig().Heads));
        Assert.That(config.Model.Moe.Experts, Is.EqualTo(new MoeConfig().Experts));
    }

    [Test]
    public void BindsEveryValueKind()
    {
        const string yaml = """
            model:
              dropout: 0.25            # double
              positions: learned       # string
            data:
              languages: [eng_Latn, deu_Latn, "no"]
              both_directions: false  # bool
              parallel:
                - src: eng_Latn
                  tgt: deu_Latn
                  src_path: a.en
                  tgt_path: a.de
                - {src: deu_Latn, tgt: fra_Latn, src_path: b.de, tgt_path: b.fr}
              monolingual:
                - lang: eng_Latn
                  path: mono.en
            train:
              seed: 12345678901        # long
              adam_eps: 1e-6
            """;
        var config = ConfigLoader.LoadText(yaml, "kinds.yaml");
        Assert.That(config.Model.Dropout, Is.EqualTo(0.25));
        Assert.That(config.Model.Positions, Is.EqualTo("learned"));
        Assert.That(config.Data.Languages, Is.EqualTo(new[] { "eng_Latn", "deu_Latn", "no" }));
        Assert.That(config.Data.BothDirections, Is.False);
        Assert.That(config.Data.Parallel, Has.Count.EqualTo(2));
        Assert.That(config.Data.Parallel[1].Tgt, Is.EqualTo("fra_Latn"));
        Assert.That(config.Data.Parallel[1].TgtPath, Is.EqualTo("b.fr"));
        Assert.That(config.Data.Monolingual.Single().Path, Is.EqualTo("mono.en"));
        Assert.That(config.Train.Seed, Is.EqualTo(12345678901L));
        Assert.That(config.Train.AdamEps, Is.EqualTo(1e-6));
    }

    [Test]
    public void Overrides_ApplyOverTheFile()
    {
        var path = _files.Write("model:\n  moe:\n    experts: 8\ntrain:\n  max_steps: 50\n");
        var config = ConfigLoader.LoadFile(path, ["model.moe.experts=16", "train.max_steps=200", "train.dtype=bfloat16"]);
        Assert.That(config.Model.Moe.Experts, Is.EqualTo(16));
        Assert.That(config.Train.MaxSteps, Is.EqualTo(200));
        Assert.That(config.Train.Dtype, Is.EqualTo("bfloat16"));
    }

    [Test]
    public void Overrides_CliSetOnDefault()
    {
        var (code, stdout, stderr) = ConfigTestSupport.Run("config", "show", "--set", "model.moe.experts=16", "--set", "train.max_steps=200");
        Assert.That(code, Is.EqualTo(0), stderr);
        var shown = ConfigLoader.LoadText(stdout, "shown.yaml");
        Assert.That(shown.Model.Moe.Experts, Is.EqualTo(16));
        Assert.That(shown.Train.MaxSteps, Is.EqualTo(200));
    }

    [Test]
    public void Overrides_LaterWins()
    {
        var config = ConfigLoader.LoadDefault(["train.max_steps=10", "train.max_steps=20"]);
        Assert.That(config.Train.MaxSteps, Is.EqualTo(20));
    }

    [Test]
    public void Overrides_ListsAsFlowYaml_ReplaceTheList()
    {
        var config = ConfigLoader.LoadText("data:\n  languages: [fra_Latn, spa_Latn, ita_Latn]\n", "t.yaml",
            ["data.languages=[eng_Latn,deu_Latn]"]);
        Assert.That(config.Data.Languages, Is.EqualTo(new[] { "eng_Latn", "deu_Latn" }));
    }

    [Test]
    public void Overrides_SectionAsFlowMapping_MergesKeys()
    {
        var config = ConfigLoader.LoadDefault(["model.moe={experts: 8, top_k: 2}"]);
        Assert.That(config.Model.Moe.Experts, Is.EqualTo(8));
        Assert.That(config.Model.Moe.TopK, Is.EqualTo(2));
        Assert.That(config.Model.Moe.MinCapacity, Is.EqualTo(new MoeConfig().MinCapacity));
    }

    [Test]
    public void Overrides_BoolAndListOfObjects()
    {
        var config = ConfigLoader.LoadDefault([
            "parallel.offload_optimizer=true", "parallel.zero_stage=1",
            "data.valid=[{src: eng_Latn, tgt: deu_Latn, src_path: v.en, tgt_path: v.de}]",
        ]);
        Assert.That(config.Parallel.OffloadOptimizer, Is.True);
        Assert.That(config.Data.Valid.Single().SrcPath, Is.EqualTo("v.en"));
    }

    [Test]
    public void Overrides_FixAnInvalidFileValue()
    {
        // Validation runs on the merged result, so a --set can repair a value the file gets wrong.
        var config = ConfigLoader.LoadText("model:\n  moe:\n    top_k: 3\n", "t.yaml", ["model.moe.top_k=2"]);
        Assert.That(config.Model.Moe.TopK, Is.EqualTo(2));
    }

    [Test]
    public void DenseModel_AllowsZeroExperts()
    {
        var config = ConfigLoader.LoadDefault(["model.moe.every_n_layers=0", "model.moe.experts=0"]);
        Assert.That(config.Model.Moe.Experts, Is.Zero);
    }

    [Test]
    public void ValidateCommand_PrintsOk()
    {
        var path = _files.Write(ConfigTestSupport.RunnableData + "train:\n  max_steps: 5\n");
        var (code, stdout, stderr) = ConfigTestSupport.Run("config", "validate", path, "--set", "train.seed=7");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout.TrimEnd(), Is.EqualTo($"{path}: ok"));
        Assert.That(stderr, Is.Empty);
    }

    [Test]
    public void ValidateCommand_SetBeforeFile_TakesOneValuePerSet()
    {
        var path = _files.Write(ConfigTestSupport.RunnableData + "train:\n  max_steps: 5\n");
        var (code, stdout, stderr) = ConfigTestSupport.Run("config", "validate", "--set", "train.seed=7", path);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout.TrimEnd(), Is.EqualTo($"{path}: ok"));
    }

    [Test]
    public void CommonOptions_LoadConfig_FileOrDefault()
    {
        var path = _files.Write("train:\n  max_steps: 5\n");
        Assert.That(ZCode.Cli.Commands.CommonOptions.LoadConfig(path, ["train.seed=9"]).Train.Seed, Is.EqualTo(9));
        Assert.That(ZCode.Cli.Commands.CommonOptions.LoadConfig(null, null).Model.DModel, Is.EqualTo(new ModelConfig().DModel));
    }

    [Test]
    public void ShowCommand_WithFile_PrintsResolvedYaml()
    {
        var path = _files.Write("model:\n  d_model: 64\n");
        var (code, stdout, stderr) = ConfigTestSupport.Run("config", "show", path, "--set", "eval.beam=6");
        Assert.That(code, Is.EqualTo(0), stderr);
        var shown = ConfigLoader.LoadText(stdout, "shown.yaml");
        Assert.That(shown.Model.DModel, Is.EqualTo(64));
        Assert.That(shown.Eval.Beam, Is.EqualTo(6));
        Assert.That(shown.Model.FfnDim, Is.EqualTo(new ModelConfig().FfnDim));
    }
}
