using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Evaluation;

/// <summary>
/// Greedy decoding by recomputing the decoder over the prefix each step. Simple and exact; beam search with a
/// key/value cache is the evaluation path for real translation.
/// </summary>
public static class GreedyDecoder
{
    /// <summary>src [B, Ls] -> generated ids [B, maxLen] (after BOS; rows end with EOS then pad).</summary>
    public static Tensor Decode(Seq2SeqTransformer model, Tensor src, int bosId, int eosId, int maxLen)
    {
        using var _ = no_grad();
        var srcMask = src.ne(model.PadId);
        var memory = model.Encode(src, srcMask);
        long b = src.shape[0];
        var prefix = full(b, 1, bosId, dtype: ScalarType.Int64, device: src.device);
        var finished = zeros(b, dtype: ScalarType.Bool, device: src.device);
        for (int t = 0; t < maxLen; t++)
        {
            var logits = model.Decode(prefix, memory, srcMask);
            var next = logits.select(1, -1).argmax(-1);
            next = next.masked_fill(finished, model.PadId);
            finished = finished.logical_or(next.eq(eosId));
            prefix = cat([prefix, next.unsqueeze(1)], 1);
            if (finished.all().item<bool>())
                break;
        }
        var generated = prefix.narrow(1, 1, prefix.shape[1] - 1);
        if (generated.shape[1] < maxLen)
            generated = nn.functional.pad(generated, [0, maxLen - generated.shape[1]], value: model.PadId);
        return generated;
    }
}
