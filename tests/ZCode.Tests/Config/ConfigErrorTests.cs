namespace ZCode.Tests.Config;

/// <summary>`zcode config validate` on bad input: exit code 2 and one line "FILE:LINE:COL: message".</summary>
[TestFixture]
public class ConfigErrorTests
{
    private ConfigTestSupport _files = null!;

    [SetUp]
    public void SetUp() => _files = new ConfigTestSupport();

    [TearDown]
    public void TearDown() => _files.Dispose();

    /// <summary>Validates <paramref name="yaml"/> as a file; asserts exit 2 and a single line with the location prefix.</summary>
    private string ExpectError(string yaml, string location, params string[] sets)
    {
        var path = _files.Write(yaml);
        var args = new[] { "config", "validate", path }.Concat(sets.SelectMany(s => new[] { "--set", s })).ToArray();
        var (code, stdout, stderr) = ConfigTestSupport.Run(args);
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stdout, Is.Empty);
        var line = stderr.TrimEnd('\n');
        Assert.That(line, Does.Not.Contain('\n'), "one line");
        var prefix = $"{path}:{location}: ";
        Assert.That(line, Does.StartWith(prefix));
        return line[prefix.Length..];
    }

    [Test]
    public void SyntaxError_UnterminatedQuote_PointsAtTheQuote()
    {
        var message = ExpectError("model:\n  positions: \"learned\n", "2:14");
        Assert.That(message, Does.StartWith("YAML syntax error: while scanning a quoted scalar"));
    }

    [Test]
    public void SyntaxError_DuplicateKey()
    {
        var message = ExpectError("model:\n  heads: 4\n  heads: 8\n", "3:3");
        Assert.That(message, Is.EqualTo("duplicate key 'heads'"));
    }

    [Test]
    public void UnknownTopLevelKey_SuggestsClosest()
    {
        var message = ExpectError("modle:\n  d_model: 64\n", "1:1");
        Assert.That(message, Is.EqualTo("unknown key 'modle', did you mean 'model'?"));
    }

    [Test]
    public void UnknownNestedKey_SuggestsSibling()
    {
        var message = ExpectError("model:\n  moe:\n    expertz: 8\n", "3:5");
        Assert.That(message, Is.EqualTo("unknown key 'expertz' in model.moe, did you mean 'experts'?"));
    }

    [Test]
    public void UnknownKey_CamelCaseSpelling_SuggestsSnakeCase()
    {
        var message = ExpectError("train:\n  maxSteps: 5\n", "2:3");
        Assert.That(message, Is.EqualTo("unknown key 'maxSteps' in train, did you mean 'max_steps'?"));
    }

    [Test]
    public void UnknownKey_NothingClose_ListsValidKeys()
    {
        var message = ExpectError("parallel:\n  banana: 1\n", "2:3");
        Assert.That(message, Is.EqualTo("unknown key 'banana' in parallel (valid keys: backend, expert_parallel, zero_stage, offload_optimizer, timeout_s)"));
    }

    [Test]
    public void UnknownKeyInListItem_NamesTheItem()
    {
        var message = ExpectError("data:\n  parallel:\n    - src: eng_Latn\n      tgt: deu_Latn\n      scr_path: a.txt\n", "5:7");
        Assert.That(message, Is.EqualTo("unknown key 'scr_path' in data.parallel[0], did you mean 'src_path'?"));
    }

    [TestCase("model:\n  d_model: abc\n", "2:12", "model.d_model: expected an integer, got 'abc'")]
    [TestCase("model:\n  d_model: 12.5\n", "2:12", "model.d_model: expected an integer, got '12.5'")]
    [TestCase("model:\n  d_model: 99999999999\n", "2:12", "model.d_model: integer out of range (at most 2147483647), got '99999999999'")]
    [TestCase("model:\n  dropout: high\n", "2:12", "model.dropout: expected a number, got 'high'")]
    [TestCase("model:\n  dropout: .nan\n", "2:12", "model.dropout: expected a number, got '.nan'")]
    [TestCase("model:\n  d_model:\n", "2:11", "model.d_model: expected an integer, got an empty value")]
    [TestCase("parallel:\n  offload_optimizer: yes\n", "2:22", "parallel.offload_optimizer: expected true or false, got 'yes'")]
    [TestCase("model:\n  positions: [a, b]\n", "2:14", "model.positions: expected a string, got a list")]
    [TestCase("data:\n  languages: eng_Latn\n", "2:14", "data.languages: expected a list (e.g. [a, b] or '- item' lines), got 'eng_Latn'")]
    public void WrongType_NamesKeyExpectationAndValue(string yaml, string location, string expected)
        => Assert.That(ExpectError(yaml, location), Is.EqualTo(expected));

    [Test]
    public void SectionGivenAScalar_ListsItsKeys()
    {
        var message = ExpectError("eval: 5\n", "1:7");
        Assert.That(message, Is.EqualTo("eval: expected a mapping with keys beam, length_penalty, max_len_a, max_len_b, tokenize, valid_sentences, valid_beam; got '5'"));
    }

    [TestCase("model:\n  moe:\n    top_k: 3\n", "3:12", "model.moe.top_k: must be one of 1, 2; got 3")]
    [TestCase("model:\n  dropout: 1.0\n", "2:12", "model.dropout: must be in [0, 1), got 1")]
    [TestCase("model:\n  moe:\n    experts: 0\n", "3:14", "model.moe.experts: must be at least 1 (or set model.moe.every_n_layers: 0 for a dense model), got 0")]
    [TestCase("model:\n  moe:\n    capacity_factor: -1\n", "3:22", "model.moe.capacity_factor: must be at least 0, got -1")]
    [TestCase("model:\n  moe:\n    token_priority: rts\n", "3:21", "model.moe.token_priority: must be one of order, random, score; got 'rts'")]
    [TestCase("model:\n  moe:\n    every_n_layers: -1\n", "3:21", "model.moe.every_n_layers: must be at least 0, got -1")]
    [TestCase("model:\n  positions: rope\n", "2:14", "model.positions: must be one of sinusoidal, learned; got 'rope'")]
    [TestCase("train:\n  schedule: cosine\n", "2:13", "train.schedule: must be one of inverse_sqrt, linear, constant; got 'cosine'")]
    [TestCase("train:\n  dtype: bfloat61\n", "2:10", "train.dtype: must be one of auto, fp32, bf16, float32, bfloat16; got 'bfloat61' (did you mean 'bfloat16'?)")]
    [TestCase("train:\n  max_steps: 0\n", "2:14", "train.max_steps: must be at least 1, got 0")]
    [TestCase("train:\n  tokens_per_batch: 0\n", "2:21", "train.tokens_per_batch: must be at least 1, got 0")]
    [TestCase("train:\n  lr: 0\n", "2:7", "train.lr: must be greater than 0, got 0")]
    [TestCase("train:\n  keep_last: 0\n", "2:14", "train.keep_last: must be at least 1, got 0")]
    [TestCase("train:\n  adam_beta2: 1.5\n", "2:15", "train.adam_beta2: must be in [0, 1), got 1.5")]
    [TestCase("parallel:\n  backend: gloo\n", "2:12", "parallel.backend: must be one of auto, local, mpi, nccl; got 'gloo'")]
    [TestCase("parallel:\n  zero_stage: 3\n", "2:15", "parallel.zero_stage: must be one of 0, 1, 2; got 3")]
    [TestCase("parallel:\n  offload_optimizer: true\n", "2:22", "parallel.offload_optimizer: needs parallel.zero_stage 1 or 2 (the offloaded state is the ZeRO shard)")]
    [TestCase("eval:\n  tokenize: spm\n", "2:13", "eval.tokenize: must be one of 13a, intl, zh, char, none; got 'spm'")]
    [TestCase("eval:\n  beam: 0\n", "2:9", "eval.beam: must be at least 1, got 0")]
    [TestCase("tasks:\n  dae:\n    mask_ratio: 1.2\n", "3:17", "tasks.dae.mask_ratio: must be in [0, 1), got 1.2")]
    [TestCase("data:\n  temperature: 0\n", "2:16", "data.temperature: must be greater than 0, got 0")]
    public void OutOfRange_NamesKeyAllowedRangeAndValue(string yaml, string location, string expected)
        => Assert.That(ExpectError(yaml, location), Is.EqualTo(expected));

    [Test]
    public void CrossFieldRule_LocatedAtTheKeyThatWasWritten()
    {
        // d_model keeps its default (128); the error points at heads, the value the user wrote.
        var message = ExpectError("model:\n  heads: 3\n", "2:10");
        Assert.That(message, Is.EqualTo("model.d_model: must be divisible by model.heads (3), got 128"));
    }

    [Test]
    public void CrossFieldRule_ExpertParallelMustDivideExperts()
    {
        var message = ExpectError("model:\n  moe:\n    experts: 6\nparallel:\n  expert_parallel: 4\n", "5:20");
        Assert.That(message, Is.EqualTo("parallel.expert_parallel: must divide model.moe.experts (6), got 4"));
    }

    [Test]
    public void CrossFieldRule_TopKAtMostExperts()
    {
        var message = ExpectError("model:\n  moe:\n    experts: 1\n    top_k: 2\n", "4:12");
        Assert.That(message, Is.EqualTo("model.moe.top_k: must be at most model.moe.experts (1), got 2"));
    }

    [Test]
    public void CrossFieldRule_CausedByAnOverride_NamesTheOverride()
    {
        var path = _files.Write("train:\n  seed: 3\n");
        var (code, _, stderr) = ConfigTestSupport.Run("config", "validate", path, "--set", "data.max_len=300");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.TrimEnd(), Is.EqualTo("--set data.max_len=300: model.max_positions: must be at least data.max_len (300), got 256"));
    }

    [Test]
    public void ParallelCorpusWithoutPath_PointsAtTheItem()
    {
        var message = ExpectError("data:\n  parallel:\n    - {src: eng_Latn, tgt: deu_Latn, src_path: a.txt}\n", "3:7");
        Assert.That(message, Is.EqualTo("data.parallel[0].tgt_path: must not be empty"));
    }

    [Test]
    public void RootNotAMapping()
    {
        var message = ExpectError("- model\n", "1:1");
        Assert.That(message, Does.StartWith("expected a mapping of sections (model, data, tasks, train, parallel, eval), got a list"));
    }

    [Test]
    public void SeveralDocuments()
    {
        var message = ExpectError("model:\n  heads: 4\n---\nmodel:\n  heads: 8\n", "4:1");
        Assert.That(message, Does.StartWith("expected one YAML document"));
    }

    [Test]
    public void MissingFile_NoSuchFile()
    {
        var path = Path.Combine(_files.Dir, "absent.yaml");
        var (code, _, stderr) = ConfigTestSupport.Run("config", "validate", path);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.TrimEnd(), Is.EqualTo($"{path}: no such file"));
    }

    [Test]
    public void DirectoryInsteadOfFile()
    {
        var (code, _, stderr) = ConfigTestSupport.Run("config", "validate", _files.Dir);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.StartWith($"{_files.Dir}: is a directory"));
    }

    // --set errors: the "file" is the override itself and there is no line/column.

    [Test]
    public void SetUnknownKey_SuggestsSibling()
    {
        var (code, _, stderr) = ConfigTestSupport.Run("config", "validate", ConfigTestSupport.ShippedConfig("m3-tiny.yaml"), "--set", "model.moe.expertz=3");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.TrimEnd(), Is.EqualTo("--set model.moe.expertz=3: unknown key 'expertz' in model.moe, did you mean 'experts'?"));
    }

    [Test]
    public void SetUnknownTopLevelKey_SuggestsSection()
    {
        var (code, _, stderr) = ConfigTestSupport.Run("config", "show", "--set", "trian.max_steps=5");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.TrimEnd(), Is.EqualTo("--set trian.max_steps=5: unknown key 'trian', did you mean 'train'?"));
    }

    [Test]
    public void SetWithoutValue_IsAnArgumentError()
    {
        var (code, _, stderr) = ConfigTestSupport.Run("config", "validate", ConfigTestSupport.ShippedConfig("m3-tiny.yaml"), "--set");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("--set"));
    }

    [TestCase("model.moe.top_k=3", "model.moe.top_k: must be one of 1, 2; got 3")]
    [TestCase("train.max_steps=many", "train.max_steps: expected an integer, got 'many'")]
    [TestCase("train.dtype=", "train.dtype: expected a string, got an empty value")]
    [TestCase("data.languages=[eng_Latn,deu_Latn", "invalid value: YAML syntax error: while parsing a flow sequence, did not find expected ',' or ']'")]
    [TestCase("model.moe.experts", "expected KEY=VALUE with a dotted key, e.g. --set model.moe.experts=16")]
    [TestCase("model..experts=3", "invalid key 'model..experts': expected a dotted path of snake_case names, e.g. model.moe.experts")]
    [TestCase("model.d_model.x=3", "model.d_model: expected an integer, got a mapping")]
    public void SetBadValue_NamesTheOverride(string set, string expected)
    {
        var path = _files.Write("model:\n  heads: 4\n");
        var (code, _, stderr) = ConfigTestSupport.Run("config", "validate", path, "--set", set);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.TrimEnd(), Is.EqualTo($"--set {set}: {expected}"));
    }
}
