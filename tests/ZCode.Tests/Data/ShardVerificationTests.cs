using ZCode.Data.Shards;
using static ZCode.Tests.CliRunner;

namespace ZCode.Tests.Data;

/// <summary>
/// Shards and checkpoints changed on disk after they were written are refused before use: one overwritten byte in a
/// shard file stops `train` before its first step, and `eval` and `prune-experts` before they read it (exit 1, one line
/// naming the file and the fix); a damaged checkpoint expert file is refused by `eval` and `translate` (exit 2, as every
/// checkpoint that fails its manifest check). The fixture prepares the bundled samples into its own shard folder and
/// trains one step on them.
/// </summary>
public class ShardVerificationTests
{
    private DataTestPaths.TempDir tmp = null!;
    private string shards = "", run = "";
    private ShardIndex index = null!;

    private string[] Settings => ["--set", $"data.shard_dir={shards}", "--set", "train.tokens_per_batch=512", "--set", "train.threads=1"];

    [OneTimeSetUp]
    public void TrainOneStep()
    {
        tmp = DataTestPaths.NewTempDir();
        shards = Path.Combine(tmp.Path, "shards");
        run = Path.Combine(tmp.Path, "run");
        // Short outputs keep decoding fast should a check fail to refuse.
        var (code, _, err) = Run(["train", .. Settings, "--set", "train.max_steps=1", "--set", "eval.max_len_a=0",
            "--set", "eval.max_len_b=4", "--output", run]);
        Assert.That(code, Is.EqualTo(0), err);
        index = ShardIndex.TryRead(Path.Combine(shards, ShardIndex.FileName))!;
    }

    [OneTimeTearDown]
    public void Remove() => tmp.Dispose();

    private string[] Train(string output) => ["train", .. Settings, "--set", "train.max_steps=2", "--output", output];

    /// <summary>Flips one byte in the middle of <paramref name="path"/> for the duration of <paramref name="body"/>.</summary>
    private static void WithOneByteOverwritten(string path, Action body)
    {
        var original = File.ReadAllBytes(path);
        Assume.That(original, Is.Not.Empty);
        var damaged = (byte[])original.Clone();
        damaged[damaged.Length / 2] ^= 0x5A;
        File.WriteAllBytes(path, damaged);
        try { body(); }
        finally { File.WriteAllBytes(path, original); }
    }

    private ShardCorpusEntry Corpus(string section) => index.Corpora.First(c => c.Section == section && c.Kept > 0);

    /// <summary>The source shard file of the first corpus of a section (<paramref name="kind"/>: ids or idx), or its keep list.</summary>
    private string ShardFile(string section, string kind) => Path.Combine(shards, kind == "keep"
        ? Corpus(section).Keep
        : index.Files[Corpus(section).SrcFile].Shard + "." + kind);

    /// <summary>The error is one line (eval and prune-experts also log their progress lines, "[HH:mm:ss INF] ...").</summary>
    private static void AssertOneLineNaming(string err, string path)
    {
        var lines = err.Trim().Split('\n').Where(l => !System.Text.RegularExpressions.Regex.IsMatch(l, @"^\[\d\d:\d\d:\d\d INF\] ")).ToList();
        Assert.That(lines, Has.Count.EqualTo(1), err);
        Assert.That(lines[0], Does.StartWith($"zcode: error: {path}: ").And.EndWith("'zcode data prepare --force'"));
    }

    [Test]
    public void EveryShardFileIsCheckedBySizeAndContent()
    {
        var verifier = new ShardVerifier(index, shards);
        void OpenAll()
        {
            verifier.CheckSizes();
            foreach (var f in index.Files) verifier.Open(f).Dispose();
            foreach (var c in index.Corpora) verifier.ReadKeep(c);
            verifier.Verify(verifier.TokenFiles());
        }
        OpenAll();
        Assert.That(index.Checksums.Keys, Is.EquivalentTo(ShardVerifier.FileNames(index).Distinct()));
        foreach (var name in index.Checksums.Keys.Where(n => index.Checksums[n].Size > 0))
        {
            var path = Path.Combine(shards, name);
            WithOneByteOverwritten(path, () =>
                Assert.That(Assert.Throws<InvalidDataException>(OpenAll)!.Message,
                    Does.StartWith(path + ": its SHA-256 differs from index.json").And.EndWith("'zcode data prepare --force'"), name));
        }
        var ids = ShardFile("parallel", "ids");
        var bytes = File.ReadAllBytes(ids);
        try
        {
            File.WriteAllBytes(ids, [.. bytes, 0]);
            Assert.That(Assert.Throws<InvalidDataException>(verifier.CheckSizes)!.Message,
                Does.StartWith($"{ids}: {bytes.Length + 1} bytes, index.json says {bytes.Length}"));
        }
        finally { File.WriteAllBytes(ids, bytes); }
        OpenAll();
    }

    [TestCase("parallel", "ids")]
    [TestCase("parallel", "idx")]
    [TestCase("parallel", "keep")]
    [TestCase("monolingual", "ids")]
    public void TrainStopsBeforeItsFirstStepOnAnOverwrittenByte(string section, string kind)
    {
        var file = ShardFile(section, kind);
        var output = Path.Combine(tmp.Path, $"damaged-{section}-{kind}");
        WithOneByteOverwritten(file, () =>
        {
            var (code, _, err) = Run(Train(output));
            Assert.That(code, Is.EqualTo(1), err);
            AssertOneLineNaming(err, file);
        });
        var metrics = Path.Combine(output, "metrics.jsonl");
        Assert.That(File.Exists(metrics) ? File.ReadAllText(metrics) : "", Is.Empty, "no step was logged");
        Assert.That(Directory.Exists(Path.Combine(output, "checkpoints")), Is.False, "nothing was saved");
    }

    [Test]
    public void EveryRankOfARunStopsWithTheFileRankZeroFoundDamaged()
    {
        var file = ShardFile("parallel", "ids");
        var cfg = ZCode.Config.ConfigLoader.LoadDefault([$"data.shard_dir={shards}", "train.tokens_per_batch=512",
            "train.threads=1", "train.max_steps=2", "model.dropout=0"]);
        var errors = new Exception?[2];
        WithOneByteOverwritten(file, () => ZCode.Tests.Parallel.InProcessGroup.Run(2, comm =>
        {
            try
            {
                using var session = ZCode.Training.TrainingSession.Open(cfg, new ZCode.Training.TrainingSessionOptions
                {
                    World = comm, OutputDir = Path.Combine(tmp.Path, "two-ranks"),
                });
                session.Build(Serilog.Core.Logger.None, new ZCode.Training.SilentTrainingObserver()).Run(CancellationToken.None);
            }
            catch (InvalidDataException e) { errors[comm.Rank] = e; }
        }, TimeSpan.FromMinutes(2)));
        Assert.That(errors.Select(e => e?.Message), Has.All.EqualTo(ShardVerifier.ContentDamaged(file)),
            "rank 1 hashes nothing: it learns rank 0's finding from the broadcast");
    }

    [Test]
    public void TrainStopsAtOpenOnAShardOfTheWrongSize()
    {
        var file = ShardFile("parallel", "ids");
        var bytes = File.ReadAllBytes(file);
        try
        {
            File.WriteAllBytes(file, bytes[..^2]);
            var (code, _, err) = Run(Train(Path.Combine(tmp.Path, "truncated")));
            Assert.That(code, Is.EqualTo(1), err);
            AssertOneLineNaming(err, file);
            Assert.That(err, Does.Contain($"{bytes.Length - 2} bytes, index.json says {bytes.Length}"));
        }
        finally { File.WriteAllBytes(file, bytes); }
    }

    [Test]
    public void EvalAndPruneExpertsRefuseADamagedValidationShard()
    {
        var valid = Corpus("valid");
        var file = ShardFile("valid", "ids");
        WithOneByteOverwritten(file, () =>
        {
            var (code, _, err) = Run("eval", "--task", "mt", "--checkpoint", run, "--pairs", $"{valid.Src}-{valid.Tgt}",
                "--output-dir", Path.Combine(tmp.Path, "eval"));
            Assert.That(code, Is.EqualTo(1), err);
            AssertOneLineNaming(err, file);

            var pruned = Path.Combine(tmp.Path, "pruned");
            (code, var output, err) = Run("prune-experts", "--checkpoint", run, "--keep", "2", "--out", pruned);
            Assert.That(code, Is.EqualTo(1), output + err);
            AssertOneLineNaming(err, file);
            Assert.That(Directory.Exists(pruned), Is.False);
        });
    }

    [Test]
    public void EvalAndTranslateRefuseADamagedCheckpointExpertFileInOneLine()
    {
        var checkpoint = ZCode.Checkpoints.CheckpointReader.ResolveDirectory(run);
        var experts = Directory.GetFiles(checkpoint, "experts-L*.safetensors").Order().First();
        var stdin = Console.In;
        try
        {
            Console.SetIn(new StringReader("Hello world.\n"));
            WithOneByteOverwritten(experts, () =>
            {
                foreach (var args in new[]
                         {
                             new[] { "eval", "--task", "mt", "--checkpoint", run, "--output-dir", Path.Combine(tmp.Path, "eval") },
                             ["translate", "--checkpoint", run, "--src", "en", "--tgt", "de"],
                         })
                {
                    var (code, output, err) = Run(args);
                    Assert.That(code, Is.EqualTo(2), args[0]);
                    Assert.That(output, Is.Empty, args[0]);
                    Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), args[0]);
                    Assert.That(err.Trim(), Is.EqualTo($"{experts}: checksum mismatch; the checkpoint is corrupt"), args[0]);
                }
            });
        }
        finally { Console.SetIn(stdin); }
    }
}
