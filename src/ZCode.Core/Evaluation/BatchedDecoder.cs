using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Evaluation;

/// <summary>
/// Decodes many sources: sorted by length into batches of at most <c>batchSize</c> sentences (less padding, and
/// batch-mates finish together), beam search per batch, results returned in input order.
/// </summary>
public static class BatchedDecoder
{
    /// <param name="sources">Model-ready source ids (target tag first, EOS last), any lengths.</param>
    /// <param name="progress">Called with the number of sentences done after each batch.</param>
    public static Hypothesis[] Decode(Seq2SeqTransformer model, IReadOnlyList<int[]> sources, int bosId, int eosId,
        BeamSearchOptions options, int batchSize, Action<int>? progress = null)
    {
        if (batchSize < 1) throw new UserInputException($"batch size must be >= 1, got {batchSize}");
        options.Validate();
        var results = new Hypothesis[sources.Count];
        // Stable sort by length: equal-length sentences keep their input order, so runs are reproducible.
        var order = Enumerable.Range(0, sources.Count).OrderBy(i => sources[i].Length).ToArray();
        int done = 0;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            var members = order.Skip(start).Take(batchSize).ToArray();
            int maxSrc = Math.Min(members.Max(i => sources[i].Length), model.Config.MaxPositions);
            var padded = new long[members.Length * maxSrc];
            Array.Fill(padded, (long)model.PadId);
            var lengths = new int[members.Length];
            for (int r = 0; r < members.Length; r++)
            {
                // Sources longer than the model's positions keep their tag and end with EOS.
                var s = sources[members[r]];
                int n = Math.Min(s.Length, maxSrc);
                for (int i = 0; i < n; i++) padded[r * maxSrc + i] = s[i];
                if (n < s.Length) padded[r * maxSrc + n - 1] = eosId;
                lengths[r] = n;
            }
            Hypothesis[] hyps;
            using (var scope = NewDisposeScope())
            {
                var src = ZCode.Runtime.HostTransfers.Upload(padded, [members.Length, maxSrc], model.Device);
                hyps = BeamSearch.Decode(model, src, lengths, bosId, eosId, options);
            }
            for (int r = 0; r < members.Length; r++)
                results[members[r]] = hyps[r];
            done += members.Length;
            progress?.Invoke(done);
        }
        return results;
    }
}
