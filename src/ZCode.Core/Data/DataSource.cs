using ZCode.Config;
using ZCode.Text;

namespace ZCode.Data;

/// <summary>Counts for one configured corpus (for logs and <c>zcode inspect</c>).</summary>
public sealed record CorpusStats(string Key, string SrcPath, string TgtPath, string SrcLang, string TgtLang,
    long Lines, int Kept, long SkippedEmpty, long SkippedTooLong);

/// <summary>
/// The data of a run, built from the <c>data</c> section: MT directions from <c>data.parallel</c> (and their
/// reverses when <c>both_directions</c>), an endless training batch stream (<see cref="Next"/>, <see cref="Train"/>)
/// and fixed validation batches from <c>data.valid</c>. Small in-memory corpora for now; binarized shards will
/// plug in behind <see cref="IExampleSet"/>.
/// </summary>
public sealed partial class DataSource
{
    private DataSource(SpmTokenizer tokenizer, IReadOnlyList<IExampleSet> train, IReadOnlyList<IExampleSet> valid,
        IReadOnlyList<CorpusStats> stats, TokenBudgetBatcher batcher, int tokensPerBatch)
    {
        Tokenizer = tokenizer;
        TrainSets = train;
        ValidSets = valid;
        Corpora = stats;
        Train = batcher;
        TokensPerBatch = tokensPerBatch;
    }

    public SpmTokenizer Tokenizer { get; }
    /// <summary>Training directions, in the order of <c>data.parallel</c> (each followed by its reverse).</summary>
    public IReadOnlyList<IExampleSet> TrainSets { get; }
    /// <summary>Validation directions from <c>data.valid</c>.</summary>
    public IReadOnlyList<IExampleSet> ValidSets { get; }
    /// <summary>Per configured corpus: lines read, kept, skipped.</summary>
    public IReadOnlyList<CorpusStats> Corpora { get; }
    /// <summary>The training batch stream (save/restore its <see cref="IBatchStream.State"/> in checkpoints).</summary>
    public TokenBudgetBatcher Train { get; }
    public int TokensPerBatch { get; }

    /// <summary>Next training batch.</summary>
    public Batch Next() => Train.Next();

    /// <summary>
    /// Validation batches of one direction (every example once, sorted by length, budget
    /// <paramref name="tokensPerBatch"/> or train.tokens_per_batch). Deterministic.
    /// </summary>
    public IReadOnlyList<Batch> ValidBatches(IExampleSet set, int? tokensPerBatch = null)
        => TokenBudgetBatcher.Sequential(set, tokensPerBatch ?? TokensPerBatch, Tokenizer.PadId, Tokenizer.BosId);

    /// <summary>Validation batches of every direction, keyed by direction name, in configuration order.</summary>
    public IReadOnlyList<(IExampleSet Set, IReadOnlyList<Batch> Batches)> AllValidBatches(int? tokensPerBatch = null)
        => ValidSets.Select(s => (s, ValidBatches(s, tokensPerBatch))).ToList();

    /// <summary>Loads the tokenizer from <c>data.spm_model</c> (relative to <paramref name="baseDir"/>) and the data.</summary>
    public static DataSource Load(ZCodeConfig config, string baseDir)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (string.IsNullOrWhiteSpace(config.Data.SpmModel))
            throw new UserInputException("data.spm_model is empty: give the path of a SentencePiece model");
        var tokenizer = SpmTokenizer.Load(Path.GetFullPath(config.Data.SpmModel, Path.GetFullPath(baseDir)));
        return Load(config, baseDir, tokenizer);
    }

    /// <summary>
    /// Reads and tokenizes the corpora of <paramref name="config"/>; relative paths resolve against
    /// <paramref name="baseDir"/>. Configuration and data problems are <see cref="UserInputException"/>s naming the key
    /// or file.
    /// </summary>
    public static DataSource Load(ZCodeConfig config, string baseDir, SpmTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var data = config.Data;
        Validate(config, tokenizer);
        var allowed = data.Languages.Select((l, i) => ResolveLanguage(l, $"data.languages[{i}]")).ToHashSet();

        var cache = new Dictionary<string, TokenizedFile>(StringComparer.Ordinal);
        var stats = new List<CorpusStats>();
        var train = BuildDirections(data.Parallel, "data.parallel", data, allowed, tokenizer, baseDir, cache, stats);
        if (train.Count == 0)
            throw new UserInputException("data.parallel is empty: the MT task needs at least one parallel corpus");
        var valid = BuildDirections(data.Valid, "data.valid", data, allowed, tokenizer, baseDir, cache, stats);

        var budget = MicroBatchTokens(config.Train);
        var batcher = new TokenBudgetBatcher(train, data.Temperature, budget, tokenizer.PadId, tokenizer.BosId, config.Train.Seed);
        return new DataSource(tokenizer, train, valid, stats, batcher, budget);
    }

    /// <summary>
    /// train.tokens_per_batch counts one optimizer step (the global batch), so each of the
    /// grad_accumulation x data-parallel micro-batches gets an equal share: a run means the same at any world size.
    /// </summary>
    public static int MicroBatchTokens(TrainConfig train, int dataParallel = 1)
        => train.TokensPerBatch / (Math.Max(1, train.GradAccumulation) * Math.Max(1, dataParallel));

    /// <summary>What the config validator guarantees before data is loaded (ConfigValidator.ValidateRun).</summary>
    private static void Validate(ZCodeConfig config, SpmTokenizer tokenizer, int dataParallel = 1)
    {
        var data = config.Data;
        if (data.MaxLen < 3 || !(data.Temperature > 0) || MicroBatchTokens(config.Train, dataParallel) < data.MaxLen)
            throw new InvalidOperationException($"data.max_len {data.MaxLen}, data.temperature {data.Temperature} or the micro-batch " +
                                                $"of {MicroBatchTokens(config.Train, dataParallel)} tokens was not validated");
        if (config.Model.VocabSize < tokenizer.VocabSize)
            throw new InvalidOperationException($"model.vocab_size {config.Model.VocabSize} < {tokenizer.VocabSize} pieces was not validated");
    }

    private static string ResolveLanguage(string value, string key)
    {
        try { return Languages.Resolve(value); }
        catch (UserInputException e) { throw new UserInputException($"{key}: {e.Message}"); }
    }

    private static List<IExampleSet> BuildDirections(List<ParallelCorpusConfig> entries, string section,
        DataConfig data, HashSet<string> allowed, SpmTokenizer tokenizer, string baseDir,
        Dictionary<string, TokenizedFile> cache, List<CorpusStats> stats)
    {
        var directions = new Dictionary<(string, string), MtDirection>();
        var order = new List<MtDirection>();
        MtDirection Direction(string s, string t)
        {
            if (!directions.TryGetValue((s, t), out var d))
            {
                d = new MtDirection(s, t, tokenizer.LanguageTagId(t), tokenizer.EosId);
                directions[(s, t)] = d;
                order.Add(d);
            }
            return d;
        }

        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            var key = $"{section}[{i}]";
            var src = ResolveLanguage(e.Src, $"{key}.src");
            var tgt = ResolveLanguage(e.Tgt, $"{key}.tgt");
            if (src == tgt) throw new UserInputException($"{key}: src and tgt are both {src}");
            foreach (var (lang, k) in new[] { (src, "src"), (tgt, "tgt") })
                if (allowed.Count > 0 && !allowed.Contains(lang))
                    throw new UserInputException($"{key}.{k}: language {lang} is not listed in data.languages");
            if (string.IsNullOrWhiteSpace(e.SrcPath)) throw new UserInputException($"{key}.src_path is empty");
            if (string.IsNullOrWhiteSpace(e.TgtPath)) throw new UserInputException($"{key}.tgt_path is empty");

            var corpus = ParallelCorpus.Load(e.SrcPath, e.TgtPath, src, tgt, tokenizer, data.MaxLen, baseDir, cache);
            stats.Add(new CorpusStats(key, corpus.SrcPath, corpus.TgtPath, src, tgt, corpus.LinesRead, corpus.Count,
                corpus.SkippedEmpty, corpus.SkippedTooLong));
            if (corpus.Count == 0)
                throw new UserInputException(
                    $"{key}: no usable lines in {corpus.SrcPath} / {corpus.TgtPath} ({corpus.LinesRead} lines: " +
                    $"{corpus.SkippedEmpty} empty, {corpus.SkippedTooLong} longer than data.max_len {data.MaxLen})");
            Direction(src, tgt).Add(corpus, reversed: false);
            if (data.BothDirections) Direction(tgt, src).Add(corpus, reversed: true);
        }
        return order.Cast<IExampleSet>().ToList();
    }
}
