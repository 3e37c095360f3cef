namespace ZCode.Tests.Config;

/// <summary>
/// Configs that `zcode train` rejects: for each, `train` (in-process) exits 2 before writing anything and
/// `config validate` exits 2, both with the same one-line message located at the offending key's line:column.
/// </summary>
[TestFixture]
public class RejectedConfigTests
{
    /// <summary>"@@" marks where the error must point (the value of the key); %SPM%, %TRAIN%, %VALID%, %UDHR% and %DIR%
    /// are the sample model, the sample corpus folders and the test's own folder.</summary>
    private const string Runnable = """
        model:
          vocab_size: 8000
          moe:
            experts: 4
        data:
          spm_model: %SPM%
          shard_dir: shards
          languages: [eng_Latn, deu_Latn, fra_Latn]
          parallel:
            - {src: eng_Latn, tgt: deu_Latn, src_path: %TRAIN%/eng_Latn.txt, tgt_path: %TRAIN%/deu_Latn.txt}
          valid:
            - {src: eng_Latn, tgt: fra_Latn, src_path: %VALID%/eng_Latn.txt, tgt_path: %VALID%/fra_Latn.txt}
          monolingual:
            - {lang: deu_Latn, path: %UDHR%/deu_Latn.txt}
          max_len: 128
        tasks:
          mt:
            weight: 1.0
          dae:
            weight: 0.0
        train:
          max_steps: 1
          tokens_per_batch: 512
          grad_accumulation: 1
          device: cpu
        parallel:
          backend: auto
          expert_parallel: 1
          zero_stage: 0
          offload_optimizer: false

        """;

    /// <summary>A config train rejects: edits of <see cref="Runnable"/> (one "@@" among them) and the message's start
    /// after "FILE:LINE:COL: ".</summary>
    public sealed record Rejected(string Name, (string From, string To)[] Edits, string Message, bool NeedsNoCuda = false)
    {
        public override string ToString() => Name;
    }

    public static IEnumerable<Rejected> Cases() =>
    [
        new("spm model file missing", [("spm_model: %SPM%", "spm_model: @@%DIR%/nope.model")],
            "data.spm_model: %DIR%/nope.model: no such file; fix the path"),
        new("spm model not set", [("  spm_model: %SPM%\n  shard_dir", "  @@shard_dir")],
            "data.spm_model: not set, and it has no default; give the SentencePiece model"),
        new("spm model not a model", [("spm_model: %SPM%", "spm_model: @@%TRAIN%/eng_Latn.txt")],
            "data.spm_model: %TRAIN%/eng_Latn.txt: not a SentencePiece model"),
        new("parallel corpus file missing", [("src_path: %TRAIN%/eng_Latn.txt", "src_path: @@%DIR%/missing.txt")],
            "data.parallel[0].src_path: %DIR%/missing.txt: no such file"),
        new("valid corpus file missing", [("tgt_path: %VALID%/fra_Latn.txt", "tgt_path: @@fra.txt")],
            "data.valid[0].tgt_path: %DIR%/fra.txt: no such file; fix the path (relative paths resolve against %DIR%)"),
        new("monolingual file missing", [("path: %UDHR%/deu_Latn.txt", "path: @@%DIR%/udhr.txt")],
            "data.monolingual[0].path: %DIR%/udhr.txt: no such file"),
        new("unknown language", [("tgt: deu_Latn", "tgt: @@deu_Ltn")],
            "data.parallel[0].tgt: unknown language 'deu_Ltn'; did you mean 'deu_Latn'?"),
        new("language not in data.languages", [("tgt: fra_Latn", "tgt: @@ita_Latn")],
            "data.valid[0].tgt: language ita_Latn is not listed in data.languages; add it there or remove this corpus"),
        new("pair of one language by alias", [("{src: eng_Latn, tgt: deu_Latn", "{src: en, tgt: @@eng_Latn")],
            "data.parallel[0].tgt: 'eng_Latn' is the language of data.parallel[0].src ('en', eng_Latn); a pair needs two languages"),
        new("vocab size mismatch", [("vocab_size: 8000", "vocab_size: @@9000")],
            "model.vocab_size: is 9000 but the SentencePiece model %SPM% has 8000 pieces; set model.vocab_size: 8000"),
        new("vocab size mismatch, vocab_size left to its default", [("  vocab_size: 8000\n", ""), ("spm_model: %SPM%", "spm_model: @@%BIGSPM%")],
            "model.vocab_size: is 8000 but the SentencePiece model %BIGSPM% has 8001 pieces; set model.vocab_size: 8001"),
        new("spm model without a target's language tag", [("spm_model: %SPM%", "spm_model: %NOTAGSPM%"), ("tgt: deu_Latn", "tgt: @@deu_Latn")],
            "data.parallel[0].tgt: the SentencePiece model %NOTAGSPM% has no language tag <2deu_Latn>; train the model with 'zcode vocab train'"),
        new("expert_parallel does not divide the ranks", [("expert_parallel: 1", "expert_parallel: @@2")],
            "parallel.expert_parallel: 2 does not divide the 1 process(es) of this launch (launcher none)"),
        new("micro-batch smaller than max_len", [("grad_accumulation: 1", "grad_accumulation: 8"), ("tokens_per_batch: 512", "tokens_per_batch: @@512")],
            "train.tokens_per_batch: 512 / train.grad_accumulation 8 = 64 tokens per micro-batch, fewer than data.max_len (128)"),
        new("dae weight without monolingual data", [("    weight: 0.0", "    weight: @@0.5"), ("  monolingual:\n    - {lang: deu_Latn, path: %UDHR%/deu_Latn.txt}\n", "")],
            "tasks.dae.weight: is 0.5 but data.monolingual is empty; add texts ({lang, path}) to data.monolingual or set tasks.dae.weight: 0"),
        new("mt weight without parallel data", [("    weight: 1.0", "    weight: @@1.0"),
                ("  parallel:\n    - {src: eng_Latn, tgt: deu_Latn, src_path: %TRAIN%/eng_Latn.txt, tgt_path: %TRAIN%/deu_Latn.txt}\n", "")],
            "tasks.mt.weight: is 1 but data.parallel is empty; add corpora"),
        new("offload without ZeRO", [("offload_optimizer: false", "offload_optimizer: @@true")],
            "parallel.offload_optimizer: needs parallel.zero_stage 1 or 2"),
        new("cuda device on a machine without CUDA", [("device: cpu", "device: @@cuda")],
            "train.device: cuda: CUDA is not available in this build/machine; set train.device: cpu or auto", NeedsNoCuda: true),
        new("nccl backend for CPU training", [("backend: auto", "backend: @@nccl")],
            "parallel.backend: nccl reduces CUDA tensors, but training runs on the CPU (train.device)"),
        new("max_len without room for a token", [("max_len: 128", "max_len: @@2")], "data.max_len: must be at least 3, got 2"),
    ];

    private string _dir = "";

    [SetUp]
    public void CreateDir() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "zcode-rejected-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    [TestCaseSource(nameof(Cases))]
    public void TrainAndValidateRejectItWithTheSameLocatedLine(Rejected c)
    {
        if (c.NeedsNoCuda)
            Assume.That(TorchSharp.torch.cuda.is_available(), Is.False, "this machine has CUDA");
        var (path, location) = Write(c.Edits.Aggregate(Runnable, (yaml, e) => Replace(yaml, e.From, e.To)));
        var expected = $"{path}:{location}: {Fill(c.Message)}";

        var output = Path.Combine(_dir, "run");
        var train = CliRunner.Run("train", "--config", path, "--output", output);
        var validate = CliRunner.Run("config", "validate", path);

        Assert.That(train.Code, Is.EqualTo(2), train.Err);
        Assert.That(train.Err.TrimEnd('\n'), Does.Not.Contain('\n'), "one line");
        Assert.That(train.Err.TrimEnd('\n'), Does.StartWith(expected));
        Assert.That(Directory.Exists(output), Is.False, "train wrote into the output directory");
        Assert.That(Directory.Exists(Path.Combine(_dir, "shards")), Is.False, "train prepared shards before rejecting the config");
        Assert.That(validate.Code, Is.EqualTo(2), validate.Err);
        Assert.That(validate.Out, Is.Empty);
        Assert.That(validate.Err, Is.EqualTo(train.Err), "config validate says what train says");
    }

    [Test]
    public void TheRunnableConfigValidates()
    {
        var (path, _) = Write(Runnable.Replace("spm_model: %SPM%", "spm_model: @@%SPM%"));
        var (code, stdout, stderr) = CliRunner.Run("config", "validate", path);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout.TrimEnd(), Is.EqualTo($"{path}: ok"));
    }

    [TestCase(2, false, null)]
    [TestCase(3, false, "parallel.expert_parallel: 2 does not divide the 3 process(es) of this launch (launcher openmpi)")]
    [TestCase(4, false, null)]
    [TestCase(8, true, "train.tokens_per_batch: 512 / (train.grad_accumulation 1 x 8 processes) = 64 tokens per micro-batch")]
    public void Ranks_ValidatesAsOnThatManyProcesses(int ranks, bool atTokens, string? message)
    {
        var yaml = Replace(Runnable, "expert_parallel: 1", atTokens ? "expert_parallel: 2" : "expert_parallel: @@2");
        var (path, location) = Write(atTokens ? Replace(yaml, "tokens_per_batch: 512", "tokens_per_batch: @@512") : yaml);
        var (code, stdout, stderr) = CliRunner.Run("config", "validate", path, "--ranks", ranks.ToString());
        if (message is null)
        {
            Assert.That(code, Is.EqualTo(0), stderr);
            Assert.That(stdout.TrimEnd(), Is.EqualTo($"{path}: ok"));
            return;
        }
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.StartWith($"{path}:{location}: {message}"));
    }

    [Test]
    public void Ranks_LocalBackendRunsOneProcess()
    {
        var (path, location) = Write(Replace(Runnable, "backend: auto", "backend: @@local"));
        Assert.That(CliRunner.Run("config", "validate", path, "--ranks", "1").Code, Is.EqualTo(0));
        var (code, _, stderr) = CliRunner.Run("config", "validate", path, "--ranks", "2");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.TrimEnd(), Is.EqualTo($"{path}:{location}: parallel.backend: local runs one process, but the launcher " +
                                                 "(openmpi) started 2; use auto, mpi or nccl"));
        Assert.That(CliRunner.Run("config", "validate", path, "--ranks", "0").Err.TrimEnd(), Is.EqualTo("--ranks: must be at least 1, got 0"));
    }

    [Test]
    public void AnOverrideIsNamedAsSuch()
    {
        var (path, _) = Write(Runnable.Replace("spm_model: %SPM%", "spm_model: @@%SPM%"));
        var output = Path.Combine(_dir, "run");
        var train = CliRunner.Run("train", "--config", path, "--set", "parallel.expert_parallel=4", "--output", output);
        var validate = CliRunner.Run("config", "validate", path, "--set", "parallel.expert_parallel=4");
        Assert.That(train.Code, Is.EqualTo(2));
        Assert.That(train.Err.TrimEnd(), Does.StartWith("--set parallel.expert_parallel=4: parallel.expert_parallel: 4 does not divide"));
        Assert.That(validate.Err, Is.EqualTo(train.Err));
        Assert.That(Directory.Exists(output), Is.False);
    }

    [Test]
    public void PreparedCorpusWithoutAUsableLine_IsReportedFromTheIndex()
    {
        // Every line is longer than max_len: `data prepare` keeps none of them; once the shards are up to date, train and
        // validate read that from index.json without tokenizing.
        var words = string.Join(' ', Enumerable.Repeat("word", 60));
        File.WriteAllText(Path.Combine(_dir, "long.en"), $"{words}\n{words}\n");
        File.WriteAllText(Path.Combine(_dir, "long.de"), $"{words}\n{words}\n");
        var yaml = Replace(Runnable, "  valid:\n", "    - @@{src: eng_Latn, tgt: deu_Latn, src_path: long.en, tgt_path: long.de}\n  valid:\n");
        var (path, location) = Write(yaml.Replace("max_len: 128", "max_len: 32"));
        var prepare = CliRunner.Run("data", "prepare", "--config", path);
        Assert.That(prepare.Code, Is.EqualTo(0), prepare.Err);
        Assert.That(prepare.Out, Does.Contain("data.parallel[1] eng_Latn-deu_Latn: 0 of 2 lines kept"));

        var output = Path.Combine(_dir, "run");
        var train = CliRunner.Run("train", "--config", path, "--output", output);
        var validate = CliRunner.Run("config", "validate", path);
        Assert.That(train.Code, Is.EqualTo(2), train.Err);
        Assert.That(train.Err.TrimEnd(), Is.EqualTo($"{path}:{location}: data.parallel[1]: no usable lines in {_dir}/long.en / " +
                                                     $"{_dir}/long.de (2 lines: 0 empty, 2 longer than data.max_len 32); fix the files or raise data.max_len"));
        Assert.That(Directory.Exists(output), Is.False);
        Assert.That(validate.Err, Is.EqualTo(train.Err));

        // Changed inputs make the index stale: it no longer speaks for the files, and `train` prepares them again.
        File.WriteAllText(Path.Combine(_dir, "long.de"), $"{words}\n{words} {words}\n");
        Assert.That(CliRunner.Run("config", "validate", path).Code, Is.EqualTo(0));
    }

    /// <summary>Replaces exactly one occurrence, so an edit that no longer matches the base config fails loudly.</summary>
    private static string Replace(string yaml, string from, string to)
    {
        var at = yaml.IndexOf(from, StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), $"'{from}' is not in the config");
        Assert.That(yaml.IndexOf(from, at + 1, StringComparison.Ordinal), Is.LessThan(0), $"'{from}' is in the config twice");
        return yaml[..at] + to + yaml[(at + from.Length)..];
    }

    /// <summary>Writes the config with its placeholders filled; returns its path and the "LINE:COL" of the "@@" mark.</summary>
    private (string Path, string Location) Write(string yaml)
    {
        yaml = Fill(yaml);
        var mark = yaml.IndexOf("@@", StringComparison.Ordinal);
        Assert.That(mark, Is.GreaterThanOrEqualTo(0), "no @@ mark");
        var line = yaml[..mark].Count(ch => ch == '\n') + 1;
        var column = mark - (yaml.LastIndexOf('\n', Math.Max(0, mark - 1)) + 1) + 1;
        var path = Path.Combine(_dir, "run.yaml");
        File.WriteAllText(path, yaml.Remove(mark, 2));
        return (path, $"{line}:{column}");
    }

    private string Fill(string text)
    {
        var samples = Path.Combine(CliRunner.RepoRoot, "data-samples");
        var model = File.ReadAllBytes(Path.Combine(samples, "spm.model"));
        if (text.Contains("%BIGSPM%"))
            File.WriteAllBytes(Path.Combine(_dir, "big.model"), WithOneMorePiece(model));
        if (text.Contains("%NOTAGSPM%"))
            File.WriteAllBytes(Path.Combine(_dir, "notag.model"), Renamed(model, "<2deu_Latn>", "<2deu_Zzzz>"));
        return text.Replace("%SPM%", Path.Combine(samples, "spm.model")).Replace("%BIGSPM%", Path.Combine(_dir, "big.model"))
            .Replace("%NOTAGSPM%", Path.Combine(_dir, "notag.model"))
            .Replace("%TRAIN%", Path.Combine(samples, "ntrex128", "train")).Replace("%VALID%", Path.Combine(samples, "ntrex128", "valid"))
            .Replace("%UDHR%", Path.Combine(samples, "udhr")).Replace("%DIR%", _dir);
    }

    /// <summary>The model plus one normal piece: a ModelProto is a sequence of fields, and pieces (field 1) may come in
    /// any order, so appending one more gives a valid model of 8001 pieces.</summary>
    private static byte[] WithOneMorePiece(byte[] model)
    {
        byte[] piece = [0x0A, 0x05, .. "extra"u8, 0x15, 0, 0, 0, 0, 0x18, 0x01]; // piece "extra", score 0.0, type NORMAL
        return [.. model, 0x0A, (byte)piece.Length, .. piece];
    }

    /// <summary>The model with one piece's text changed to another of the same length (the protobuf sizes stay right).</summary>
    private static byte[] Renamed(byte[] model, string piece, string to)
    {
        var at = model.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(piece));
        Assert.That(at, Is.GreaterThanOrEqualTo(0), piece);
        var copy = model.ToArray();
        System.Text.Encoding.UTF8.GetBytes(to).CopyTo(copy, at);
        return copy;
    }
}
