using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Evaluation;

/// <summary>
/// Batched beam search with fairseq's semantics (see <see cref="BeamSearchOptions"/>): each step keeps the 2*beam
/// best extensions of every sentence; EOS extensions among the first beam of them finish a hypothesis; the first
/// beam non-EOS ones stay live; a sentence is done when it has beam finished hypotheses, and leaves the batch.
/// The live rows of all sentences run through the decoder together, one step at a time.
/// Unlike fairseq, the length limit is per sentence, so a sentence's output never depends on its batch-mates.
/// </summary>
public static class BeamSearch
{
    /// <summary>
    /// Decodes a batch: src [B, Ls] (pad = model.PadId), srcLengths the real length of each row.
    /// Returns the best hypothesis of each row. The model should be in eval mode.
    /// </summary>
    public static Hypothesis[] Decode(Seq2SeqTransformer model, Tensor src, int[] srcLengths, int bosId, int eosId,
        BeamSearchOptions options)
    {
        options.Validate();
        using var batchScope = NewDisposeScope();
        using var _ = no_grad();
        int batch = (int)src.shape[0], beam = options.Beam;
        var srcMask = src.ne(model.PadId);
        var memory = model.Encode(src, srcMask);
        // Every sentence's source is repeated once per beam row: row b*beam + k is hypothesis k of sentence b.
        var rowsOfBeams = arange(batch, dtype: ScalarType.Int64, device: src.device).repeat_interleave(beam);
        memory = memory.index_select(0, rowsOfBeams);
        srcMask = srcMask.index_select(0, rowsOfBeams);
        using IDecoderStepper stepper = options.UseCache
            ? new CachedStepper(model, memory, srcMask)
            : new RecomputingStepper(model, memory, srcMask);

        var maxLen = srcLengths.Select(n => Math.Min((int)(options.MaxLenA * n + options.MaxLenB), model.Config.MaxPositions - 1))
            .ToArray();
        var finished = Enumerable.Range(0, batch).Select(_ => new List<Hypothesis>()).ToArray();
        // Live state, per live sentence (in order): its index, and per beam row its tokens and cumulative score.
        var live = Enumerable.Range(0, batch).ToList();
        var tokens = new List<int>[batch * beam];
        var scores = new double[batch * beam];
        for (int r = 0; r < tokens.Length; r++)
        {
            tokens[r] = new List<int>();
            // On the first step all rows of a sentence are identical: only row 0 may extend, as fairseq does.
            scores[r] = r % beam == 0 ? 0 : double.NegativeInfinity;
        }
        var last = full(batch * beam, bosId, dtype: ScalarType.Int64, device: src.device);
        last.MoveToOuterDisposeScope();

        for (int step = 0; live.Count > 0; step++)
        {
            using var stepScope = NewDisposeScope();
            var lprobs = nn.functional.log_softmax(stepper.Step(last), -1);
            int vocab = (int)lprobs.shape[1];
            var cand = BanAndScore(lprobs, live, tokens, scores, maxLen, step, beam, model.PadId, eosId, options);
            var (top, topIdx) = cand.view(live.Count, beam * vocab).topk(Math.Min(2 * beam, beam * vocab), 1);
            var topScores = top.cpu().data<float>().ToArray();
            var topIds = topIdx.cpu().data<long>().ToArray();
            int width = (int)top.shape[1];

            var nextLive = new List<int>();
            var nextTokens = new List<List<int>>();
            var nextScores = new List<double>();
            var sourceRows = new List<long>();
            var nextLast = new List<long>();
            for (int i = 0; i < live.Count; i++)
            {
                int sentence = live[i];
                var chosen = new List<(int Row, int Token, double Score)>();
                for (int j = 0; j < width && (chosen.Count < beam || j < beam); j++)
                {
                    double score = topScores[i * width + j];
                    if (double.IsNegativeInfinity(score)) break;
                    int row = i * beam + (int)(topIds[i * width + j] / vocab);
                    int token = (int)(topIds[i * width + j] % vocab);
                    if (token == eosId)
                    {
                        // fairseq finalises EOS only among the first beam candidates; the length counts the EOS.
                        if (j < beam && finished[sentence].Count < beam)
                            finished[sentence].Add(new Hypothesis(tokens[row].ToArray(),
                                score / Math.Pow(tokens[row].Count + 1, options.LengthPenalty)));
                    }
                    else if (chosen.Count < beam)
                        chosen.Add((row, token, score));
                }
                if (finished[sentence].Count >= beam || chosen.Count == 0)
                    continue;
                nextLive.Add(sentence);
                for (int k = 0; k < beam; k++)
                {
                    // Fewer live extensions than beam (tiny vocabularies): pad with dead rows that never win.
                    var (row, token, score) = k < chosen.Count ? chosen[k] : (chosen[0].Row, chosen[0].Token, double.NegativeInfinity);
                    nextTokens.Add([.. tokens[row], token]);
                    nextScores.Add(score);
                    sourceRows.Add(row);
                    nextLast.Add(token);
                }
            }
            if (nextLive.Count == 0) break;

            bool shrunk = nextLive.Count != live.Count;
            var rows = tensor(sourceRows.ToArray(), device: src.device);
            stepper.Reorder(rows, shrunk);
            var newLast = tensor(nextLast.ToArray(), device: src.device).MoveToOuterDisposeScope();
            last.Dispose();
            last = newLast;
            live = nextLive;
            tokens = nextTokens.ToArray();
            scores = nextScores.ToArray();
        }

        return finished.Select(Best).ToArray();
    }

    /// <summary>
    /// Candidate scores [live*beam, V] = cumulative score + log-probability, with forbidden tokens at -inf:
    /// pad always, everything but EOS at the length limit, else EOS before min_len, repeated n-grams.
    /// Works in place on lprobs (a fresh tensor).
    /// </summary>
    private static Tensor BanAndScore(Tensor lprobs, List<int> live, List<int>[] tokens, double[] scores, int[] maxLen,
        int step, int beam, int padId, int eosId, BeamSearchOptions options)
    {
        int rows = (int)lprobs.shape[0];
        var device = lprobs.device;
        var forcedRows = Enumerable.Range(0, rows).Select(r => step >= maxLen[live[r / beam]]).ToArray();
        var eosColumn = lprobs.narrow(1, eosId, 1);
        if (forcedRows.Any(f => f))
        {
            var forced = tensor(forcedRows, device: device).unsqueeze(1);
            var eosScores = eosColumn.clone();
            lprobs.masked_fill_(forced, float.NegativeInfinity);
            eosColumn.copy_(eosScores);
            if (step < options.MinLen)
                eosColumn.masked_fill_(forced.logical_not(), float.NegativeInfinity);
        }
        else if (step < options.MinLen)
            eosColumn.fill_(float.NegativeInfinity);
        if (padId >= 0 && padId < lprobs.shape[1] && padId != eosId)
            lprobs.narrow(1, padId, 1).fill_(float.NegativeInfinity);
        if (options.NoRepeatNgram > 0)
        {
            var banRows = new List<long>();
            var banTokens = new List<long>();
            for (int r = 0; r < rows; r++)
                foreach (var banned in NgramBans(tokens[r], options.NoRepeatNgram))
                {
                    banRows.Add(r);
                    banTokens.Add(banned);
                }
            if (banRows.Count > 0)
                lprobs.index_put_(float.NegativeInfinity, tensor(banRows.ToArray(), device: device), tensor(banTokens.ToArray(), device: device));
        }
        var cumulative = tensor(scores.Select(s => (float)s).ToArray(), device: device).unsqueeze(1);
        return lprobs.add_(cumulative);
    }

    /// <summary>Tokens that would repeat an n-gram already in <paramref name="prefix"/> (fairseq's no_repeat_ngram).</summary>
    private static IEnumerable<int> NgramBans(List<int> prefix, int n)
    {
        int k = prefix.Count;
        if (k < n - 1 || n < 1) yield break;
        for (int start = 0; start + n <= k; start++)
        {
            bool match = true;
            for (int i = 0; i < n - 1 && match; i++)
                match = prefix[start + i] == prefix[k - (n - 1) + i];
            if (match) yield return prefix[start + n - 1];
        }
    }

    /// <summary>Highest normalised score; the earliest finished wins ties (fairseq's stable sort).</summary>
    private static Hypothesis Best(List<Hypothesis> hyps)
    {
        if (hyps.Count == 0) return new Hypothesis([], double.NegativeInfinity);
        var best = hyps[0];
        foreach (var h in hyps)
            if (h.Score > best.Score) best = h;
        return best;
    }
}
