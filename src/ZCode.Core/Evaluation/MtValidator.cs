using System.Text.Json;
using ZCode.Config;
using ZCode.Data;
using ZCode.Data.Shards;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Text;
using ZCode.Training;
using static TorchSharp.torch;

namespace ZCode.Evaluation;

/// <summary>One direction to validate: batches of its kept lines for the loss, and its lines in file order (sources and
/// references) for translation.</summary>
public sealed record ValidationDirection(EvalDirection Direction, IReadOnlyList<Batch> LossBatches, EvalInputs Inputs);

/// <summary>How a validation translates and scores: beam settings, sentences per direction (0 = all), batch size.</summary>
public sealed record ValidationOptions(BeamSearchOptions Beam, ScoringOptions Scoring, int Sentences = 0, int BatchSize = 32);

/// <summary>The scores of one direction: teacher-forced NLL per target token over its kept lines, and the BLEU/chrF of
/// the translated sentences with their hypotheses (in input order).</summary>
public sealed record DirectionValidation(EvalDirection Direction, double Nll, long Tokens, CorpusScores Scores, int Sentences,
    long HypothesisTokens, double DecodeSeconds, IReadOnlyList<string> Hypotheses)
{
    public double Perplexity => Math.Exp(Nll);
    /// <summary>Hypothesis tokens per second of this process's decoding.</summary>
    public double TokensPerSecond => DecodeSeconds > 0 ? HypothesisTokens / DecodeSeconds : 0;
}

/// <summary>A validation of every direction, and the figures <c>train.best_metric</c> can name.</summary>
public sealed record ValidationResult(IReadOnlyList<DirectionValidation> Directions, double Seconds)
{
    /// <summary>NLL per target token over all directions (token-weighted), as fairseq's valid loss.</summary>
    public double ValidLoss => Directions.Sum(d => d.Nll * d.Tokens) / Math.Max(1, Directions.Sum(d => d.Tokens));
    /// <summary>Mean BLEU over directions (each counts once, as in multilingual benchmark tables).</summary>
    public double Bleu => Directions.Count == 0 ? 0 : Directions.Average(d => d.Scores.Bleu?.Score ?? 0);
    public double Chrf => Directions.Count == 0 ? 0 : Directions.Average(d => d.Scores.Chrf?.Score ?? 0);

    /// <summary>Whether <paramref name="value"/> of <paramref name="metric"/> improves on <paramref name="best"/> (null:
    /// nothing yet). The loss improves downwards, the scores upwards; a tie is no improvement.</summary>
    public static bool Improves(string metric, double value, double? best)
        => best is not { } b || (metric == "valid_loss" ? value < b : value > b);
}

/// <summary>
/// Validation of a translation model, the same for <c>zcode train</c>'s periodic validation and <c>zcode eval</c>:
/// teacher-forced NLL (eval mode: eval capacity factor, deterministic routing) and batched beam search scored with
/// sacreBLEU-identical BLEU and chrF. With several ranks every rank takes part: the work is dealt out by batch to the
/// replicas of the model (the expert groups; the ranks of one expert group run every batch together, as their MoE layers
/// need), the replicas' figures are summed by name and their hypotheses gathered, so the result equals one process's
/// (the batches are the ones one process would form).
/// </summary>
public static class MtValidator
{
    /// <summary>The directions of <paramref name="split"/> (valid | test; <paramref name="pairs"/> as <c>--pairs</c>) read
    /// from the prepared shards: loss batches of the kept lines (budget <paramref name="tokensPerBatch"/>, default the
    /// training micro-batch) and every line for translation.</summary>
    public static List<ValidationDirection> Directions(ZCodeConfig config, DataSource data, PrepareResult prepared, string split,
        string? pairs = null, int? tokensPerBatch = null)
    {
        var sets = data.HeldOut(split);
        // Both sides of every pair are read (sources for translation, targets for the loss): check them before use.
        data.Verifier.Verify(data.Verifier.TokenFiles(split));
        return MtEvaluation.Directions(config, split, pairs).Select(d =>
        {
            var set = sets.FirstOrDefault(s => s.SrcLang == d.Src && s.TgtLang == d.Tgt);
            return new ValidationDirection(d, set is null ? [] : data.ValidBatches(set, tokensPerBatch),
                MtEvaluation.ReadInputs(prepared, d, data.Tokenizer));
        }).ToList();
    }

    /// <summary>Validates <paramref name="directions"/>; a collective when <paramref name="layout"/> has several ranks.
    /// <paramref name="progress"/> hears of every batch this process translates (the direction, sentences done).</summary>
    public static ValidationResult Run(Seq2SeqTransformer model, SpmTokenizer tokenizer, IReadOnlyList<ValidationDirection> directions,
        ValidationOptions options, ParallelLayout layout, Action<EvalDirection, int>? progress = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int replicas = layout.WorldSize / layout.ExpertParallel, replica = layout.Rank / layout.ExpertParallel;
        bool reports = layout.ExpertGroup.Rank == 0; // one rank per replica contributes, the others ran alongside it
        bool wasTraining = model.training;
        model.eval();
        var sums = new NamedSums();
        var hypotheses = new Dictionary<string, SortedDictionary<int, int[]>>(StringComparer.Ordinal);
        var decodeSeconds = new Dictionary<string, double>(StringComparer.Ordinal);
        try
        {
            using var _ = no_grad();
            foreach (var d in directions)
            {
                var name = d.Direction.Name;
                var (nll, tokens) = (0.0, 0L);
                for (int b = replica; b < d.LossBatches.Count; b += replicas)
                {
                    nll += TeacherForcedNll(model, d.LossBatches[b]);
                    tokens += d.LossBatches[b].TgtTokenCount;
                }
                sums.Add($"{name}/nll", reports ? nll : 0);
                sums.Add($"{name}/tokens", reports ? tokens : 0);

                var sources = Take(d.Inputs.Sources, options.Sentences);
                var mine = new SortedDictionary<int, int[]>();
                var batches = BatchedDecoder.Batches(sources, options.BatchSize);
                var decodeClock = System.Diagnostics.Stopwatch.StartNew();
                int done = 0;
                for (int b = replica; b < batches.Count; b += replicas)
                {
                    var hyps = BatchedDecoder.DecodeBatch(model, sources, batches[b], tokenizer.BosId, tokenizer.EosId, options.Beam);
                    for (int r = 0; r < hyps.Length && reports; r++)
                        mine[batches[b][r]] = hyps[r].Tokens;
                    progress?.Invoke(d.Direction, done += hyps.Length);
                }
                decodeSeconds[name] = decodeClock.Elapsed.TotalSeconds;
                hypotheses[name] = mine;
            }
        }
        finally
        {
            if (wasTraining) model.train();
        }
        sums.Reduce(layout.World);
        if (layout.WorldSize > 1)
            foreach (var part in StringExchange.AllGather(layout.World, JsonSerializer.Serialize(hypotheses)))
                foreach (var (name, hyps) in JsonSerializer.Deserialize<Dictionary<string, SortedDictionary<int, int[]>>>(part)!)
                    foreach (var (i, tokens) in hyps)
                        hypotheses[name][i] = tokens;

        var results = new List<DirectionValidation>();
        foreach (var d in directions)
        {
            var name = d.Direction.Name;
            var ids = hypotheses[name].Values.ToList();
            var texts = ids.Select(tokenizer.Decode).ToList();
            var references = Take(d.Inputs.References, options.Sentences);
            long tokens = (long)sums[$"{name}/tokens"];
            results.Add(new DirectionValidation(d.Direction, sums[$"{name}/nll"] / Math.Max(1, tokens), tokens,
                CorpusScorer.Score(texts, [references], options.Scoring), texts.Count, ids.Sum(t => (long)t.Length), decodeSeconds[name], texts));
        }
        return new ValidationResult(results, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Summed NLL of the batch's targets (no label smoothing), forwarded with its host-known token counts.</summary>
    public static double TeacherForcedNll(Seq2SeqTransformer model, Batch batch)
    {
        using var scope = NewDisposeScope();
        var (src, tgtIn, tgtOut) = batch.ToTensors(model.Device);
        var logits = model.Forward(src, tgtIn, batch.SrcTokenCount, batch.TgtTokenCount);
        var (_, nll) = Losses.LabelSmoothedCrossEntropy(logits, tgtOut, model.PadId, 0);
        return ZCode.Runtime.HostTransfers.Item<float>(nll);
    }

    private static IReadOnlyList<T> Take<T>(IReadOnlyList<T> all, int count) => count <= 0 || count >= all.Count ? all : all.Take(count).ToList();
}
