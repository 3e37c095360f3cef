using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Evaluation;

/// <summary>
/// Decodes many sources: sorted by length into batches of at most <c>batchSize</c> sentences (less padding, and
/// batch-mates finish together), beam search per batch, results returned in input order. The batches depend only on
/// the sources, so ranks that share the work decode exactly the batches one process would (<see cref="Batches"/>).
/// </summary>
public static class BatchedDecoder
{
    /// <param name="sources">Model-ready source ids (target tag first, EOS last), any lengths.</param>
    /// <param name="progress">Called with the number of sentences done after each batch.</param>
    public static Hypothesis[] Decode(Seq2SeqTransformer model, IReadOnlyList<int[]> sources, int bosId, int eosId,
        BeamSearchOptions options, int batchSize, Action<int>? progress = null)
    {
        var results = new Hypothesis[sources.Count];
        int done = 0;
        foreach (var members in Batches(sources, batchSize))
        {
            var hyps = DecodeBatch(model, sources, members, bosId, eosId, options);
            for (int r = 0; r < members.Length; r++)
                results[members[r]] = hyps[r];
            done += members.Length;
            progress?.Invoke(done);
        }
        return results;
    }

    /// <summary>The indices of the sources in each batch, in decoding order. Stable sort by length: equal-length
    /// sentences keep their input order, so runs are reproducible.</summary>
    public static List<int[]> Batches(IReadOnlyList<int[]> sources, int batchSize)
    {
        if (batchSize < 1) throw new UserInputException($"batch size must be >= 1, got {batchSize}");
        var order = Enumerable.Range(0, sources.Count).OrderBy(i => sources[i].Length).ToArray();
        return order.Chunk(batchSize).ToList();
    }

    /// <summary>Beam search of the sources <paramref name="members"/>; hypotheses in the order of the members.</summary>
    public static Hypothesis[] DecodeBatch(Seq2SeqTransformer model, IReadOnlyList<int[]> sources, int[] members, int bosId, int eosId,
        BeamSearchOptions options)
    {
        options.Validate();
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
        using var scope = NewDisposeScope();
        var src = ZCode.Runtime.HostTransfers.Upload(padded, [members.Length, maxSrc], model.Device);
        return BeamSearch.Decode(model, src, lengths, bosId, eosId, options);
    }
}
