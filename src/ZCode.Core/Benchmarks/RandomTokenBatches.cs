using ZCode.Data;

namespace ZCode.Benchmarks;

/// <summary>
/// One fixed batch of random tokens (ids above the four specials, drawn from a seed), handed out forever: training
/// steps at a chosen shape without data loading. Every row is MT eng_Latn→deu_Latn, so the trainer's per-language
/// statistics have something to count. The stream has no position: it is always at its start.
/// </summary>
public sealed class RandomTokenBatches : IBatchStream
{
    /// <summary>Ids 0..3 are pad/unk/bos/eos-like specials: never drawn.</summary>
    public const int FirstRegularId = 4;
    private readonly Batch batch;
    private SamplerState state = new();

    public RandomTokenBatches(int vocabSize, int batchSize, int srcLen, int tgtLen, long seed)
    {
        if (vocabSize <= FirstRegularId)
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"random tokens need ids above {FirstRegularId}");
        var rng = new Random(unchecked((int)seed));
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(FirstRegularId, vocabSize)).ToArray();
        var examples = Enumerable.Range(0, batchSize)
            .Select(_ => new Example(Tokens(srcLen), Tokens(tgtLen), "eng_Latn", "deu_Latn", Tasks.Mt)).ToList();
        batch = Batch.Collate(examples, padId: 0, bosId: 2);
    }

    /// <summary>Tokens of a batch as bench/peer_torch.py counts them: rows x (source + target length).</summary>
    public long TokensPerBatch => (long)batch.Size * (batch.SrcLen + batch.TgtLen);

    public Batch Next() => batch;

    public SamplerState State
    {
        get => state;
        set => state = value;
    }
}
