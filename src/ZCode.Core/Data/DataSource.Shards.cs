using ZCode.Config;
using ZCode.Data.Shards;
using ZCode.Text;

namespace ZCode.Data;

public sealed partial class DataSource
{
    /// <summary>The data error of a DAE task whose monolingual texts all kept no line.</summary>
    public const string NoMonolingualText = "data.monolingual: no usable lines in any of its texts, but the DAE task " +
                                            "(tasks.dae.weight > 0) needs some; fix the files, raise data.max_len or set tasks.dae.weight: 0";

    /// <summary>
    /// The data of a run read from the shards of <c>data.shard_dir</c> (memory-mapped): MT directions from
    /// <c>data.parallel</c> (and reverses), DAE sets per language from <c>data.monolingual</c> when
    /// <c>tasks.dae.weight</c> &gt; 0, validation from <c>data.valid</c>. Runs <see cref="DataPreparer.Prepare"/>
    /// first, which does nothing when the shards are up to date. With <paramref name="dataParallel"/> ranks, the
    /// micro-batch budget is train.tokens_per_batch / (grad_accumulation x dataParallel) and every rank's stream
    /// yields the same global sequence of micro-batches (each rank trains on its own share of them).
    /// </summary>
    public static DataSource FromShards(ZCodeConfig config, IProgress<PrepareProgress>? progress = null,
        Action<PrepareResult>? prepared = null, int dataParallel = 1)
    {
        ArgumentNullException.ThrowIfNull(config);
        var preparation = DataPreparer.Prepare(config, progress);
        prepared?.Invoke(preparation);
        return FromPrepared(config, preparation, dataParallel);
    }

    /// <summary>As <see cref="FromShards"/>, over shards that <see cref="DataPreparer.Prepare"/> has just prepared (or
    /// found up to date) for <paramref name="config"/>. Every shard file's size, and the content of the offsets and keep
    /// lists, are checked against the index here; the token ids are checked by the caller (<see cref="Verifier"/>).</summary>
    public static DataSource FromPrepared(ZCodeConfig config, PrepareResult prepared, int dataParallel = 1)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        var index = prepared.Index;
        var tokenizer = SpmTokenizer.Load(index.SpmModel);
        // The validator checks this for train; prune-experts gets here with a checkpoint's config and today's model file.
        if (config.Model.VocabSize < tokenizer.VocabSize)
            throw new InvalidOperationException($"model.vocab_size {config.Model.VocabSize} < {tokenizer.VocabSize} pieces was not validated");
        var data = config.Data;
        var tasks = config.Tasks;

        var verifier = prepared.Verifier;
        verifier.CheckSizes();
        var shards = index.Files.Select(f => verifier.Open(f)).ToArray();
        var mt = new Dictionary<(string, string), ShardMtSet>();
        var valid = new Dictionary<(string, string), ShardMtSet>();
        var test = new Dictionary<(string, string), ShardMtSet>();
        var dae = new Dictionary<string, DaeSet>();
        var trainOrder = new List<IExampleSet>();
        var validOrder = new List<IExampleSet>();
        var testOrder = new List<IExampleSet>();
        var stats = new List<CorpusStats>();
        DaeNoise? noise = null;
        if (tasks.Dae.Weight > 0)
        {
            var ends = new bool[tokenizer.VocabSize];
            for (var i = 0; i < ends.Length; i++)
                ends[i] = tokenizer.PieceType(i) == SpmPieceType.Normal && tokenizer.IdToToken(i) is { Length: > 0 } p &&
                          ".!?。！？।؟".Contains(p[^1]);
            noise = new DaeNoise(tasks.Dae.MaskRatio, tasks.Dae.PoissonLambda, tokenizer.TokenToId(Languages.MaskToken),
                tasks.Dae.PermuteSentences, ends);
        }

        ShardMtSet Mt(Dictionary<(string, string), ShardMtSet> map, List<IExampleSet> order, string s, string t)
        {
            if (!map.TryGetValue((s, t), out var set))
            {
                map[(s, t)] = set = new ShardMtSet(s, t, tokenizer.LanguageTagId(t), tokenizer.EosId);
                order.Add(set);
            }
            return set;
        }

        foreach (var c in index.Corpora)
        {
            var keep = verifier.ReadKeep(c);
            stats.Add(new CorpusStats(c.Key, c.Lines, keep.Length, c.SkippedEmpty, c.SkippedTooLong));
            if (c.Section == "monolingual")
            {
                if (noise is null) continue;
                if (!dae.TryGetValue(c.Src, out var set))
                {
                    dae[c.Src] = set = new DaeSet(c.Src, tokenizer.TokenToId(Languages.DaeTag), tokenizer.LanguageTagId(c.Src),
                        tokenizer.EosId, noise, config.Train.Seed);
                    trainOrder.Add(set);
                }
                set.Add(shards[c.SrcFile], keep);
                continue;
            }
            // Data content, found only now when the shards were prepared just before (else the validator reported it).
            if (keep.Length == 0 && c.Section == "parallel")
                throw new UserInputException(c.NoUsableLines(index));
            // Test corpora are held out for `zcode eval --split test`: never trained or validated on.
            var (map, order) = c.Section switch { "valid" => (valid, validOrder), "test" => (test, testOrder), _ => (mt, trainOrder) };
            Mt(map, order, c.Src, c.Tgt).Add(shards[c.SrcFile], shards[c.TgtFile], keep);
            if (data.BothDirections) Mt(map, order, c.Tgt, c.Src).Add(shards[c.TgtFile], shards[c.SrcFile], keep);
        }

        if (tasks.Dae.Weight > 0 && dae.Values.All(s => s.Count == 0))
            throw new UserInputException(NoMonolingualText);
        var train = trainOrder.Where(s => s.Count > 0 && (s.Task == Tasks.Mt ? tasks.Mt.Weight > 0 : tasks.Dae.Weight > 0))
            .ToList();
        var weights = new Dictionary<string, double> { [Tasks.Mt] = tasks.Mt.Weight, [Tasks.Dae] = tasks.Dae.Weight };
        var budget = MicroBatchTokens(config.Train, dataParallel);
        var batcher = new TokenBudgetBatcher(train, data.Temperature, budget, tokenizer.PadId, tokenizer.BosId,
            config.Train.Seed, probabilities: TaskMixture.Probabilities(train, weights, data.Temperature));
        return new DataSource(tokenizer, train, validOrder.Where(s => s.Count > 0).ToList(), testOrder.Where(s => s.Count > 0).ToList(),
            stats, batcher, budget, verifier);
    }
}
