using ZCode.Config;
using ZCode.Data.Shards;
using ZCode.Text;

namespace ZCode.Data;

/// <summary>Counts for one configured corpus (for logs and <c>zcode inspect</c>).</summary>
public sealed record CorpusStats(string Key, long Lines, int Kept, long SkippedEmpty, long SkippedTooLong);

/// <summary>
/// The data of a run, read from the prepared shards (<see cref="FromShards"/>): MT directions from
/// <c>data.parallel</c> (and their reverses when <c>both_directions</c>), an endless training batch stream
/// (<see cref="Next"/>, <see cref="Train"/>) and fixed validation batches from <c>data.valid</c>.
/// </summary>
public sealed partial class DataSource
{
    private DataSource(SpmTokenizer tokenizer, IReadOnlyList<IExampleSet> train, IReadOnlyList<IExampleSet> valid,
        IReadOnlyList<IExampleSet> test, IReadOnlyList<CorpusStats> stats, TokenBudgetBatcher batcher, int tokensPerBatch,
        ShardVerifier verifier)
    {
        Verifier = verifier;
        Tokenizer = tokenizer;
        TrainSets = train;
        ValidSets = valid;
        TestSets = test;
        Corpora = stats;
        Train = batcher;
        TokensPerBatch = tokensPerBatch;
    }

    public SpmTokenizer Tokenizer { get; }
    /// <summary>Training directions, in the order of <c>data.parallel</c> (each followed by its reverse).</summary>
    public IReadOnlyList<IExampleSet> TrainSets { get; }
    /// <summary>Validation directions from <c>data.valid</c>.</summary>
    public IReadOnlyList<IExampleSet> ValidSets { get; }
    /// <summary>Test directions from <c>data.test</c>: never trained or validated on, read by <c>zcode eval --split test</c>.</summary>
    public IReadOnlyList<IExampleSet> TestSets { get; }

    /// <summary>The held-out directions of <paramref name="split"/> (valid | test).</summary>
    public IReadOnlyList<IExampleSet> HeldOut(string split) => split == "test" ? TestSets : ValidSets;
    /// <summary>Per configured corpus: lines read, kept, skipped.</summary>
    public IReadOnlyList<CorpusStats> Corpora { get; }
    /// <summary>The training batch stream (save/restore its <see cref="IBatchStream.State"/> in checkpoints).</summary>
    public TokenBudgetBatcher Train { get; }
    public int TokensPerBatch { get; }
    /// <summary>Checks the shards read here against their index: their token ids were not hashed when opened.</summary>
    public ShardVerifier Verifier { get; }

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

    /// <summary>
    /// train.tokens_per_batch counts one optimizer step (the global batch), so each of the
    /// grad_accumulation x data-parallel micro-batches gets an equal share: a run means the same at any world size.
    /// </summary>
    public static int MicroBatchTokens(TrainConfig train, int dataParallel = 1)
        => train.TokensPerBatch / (Math.Max(1, train.GradAccumulation) * Math.Max(1, dataParallel));
}
