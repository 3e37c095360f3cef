using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Evaluation;

/// <summary>
/// Produces next-token logits for the live rows of a beam search and follows its reordering. Two implementations
/// compute the same thing: with a key/value cache (fast) and by recomputing the decoder over the prefix (reference).
/// </summary>
internal interface IDecoderStepper : IDisposable
{
    /// <summary>lastTokens [N] (BOS on the first step) -> fp32 logits [N, V].</summary>
    Tensor Step(Tensor lastTokens);

    /// <summary>Row i of the next step continues row rows[i]; sourceRowsChanged when sentences left the batch.</summary>
    void Reorder(Tensor rows, bool sourceRowsChanged);
}

/// <summary>Incremental decoding with <see cref="Seq2SeqTransformer.DecodeStep"/> and a <see cref="DecoderCache"/>.</summary>
internal sealed class CachedStepper(Seq2SeqTransformer model, Tensor memory, Tensor srcMask) : IDecoderStepper
{
    private readonly DecoderCache cache = model.StartDecoding(memory, srcMask);

    public Tensor Step(Tensor lastTokens) => model.DecodeStep(lastTokens, cache);

    public void Reorder(Tensor rows, bool sourceRowsChanged) => cache.Reorder(rows, sourceRowsChanged);

    public void Dispose() => cache.Dispose();
}

/// <summary>Reference decoding without a cache: the whole prefix goes through the decoder every step.</summary>
internal sealed class RecomputingStepper : IDecoderStepper
{
    private readonly Seq2SeqTransformer model;
    private Tensor memory, srcMask;
    private Tensor? prefix;

    public RecomputingStepper(Seq2SeqTransformer model, Tensor memory, Tensor srcMask)
    {
        this.model = model;
        this.memory = memory.alias().DetachFromDisposeScope();
        this.srcMask = srcMask.alias().DetachFromDisposeScope();
    }

    public Tensor Step(Tensor lastTokens)
    {
        var column = lastTokens.view(-1, 1);
        prefix = Replace(prefix, prefix is null ? column.alias() : cat([prefix, column], 1));
        return model.DecodeLast(prefix, memory, srcMask);
    }

    public void Reorder(Tensor rows, bool sourceRowsChanged)
    {
        if (prefix is not null) prefix = Replace(prefix, prefix.index_select(0, rows));
        if (sourceRowsChanged)
        {
            memory = Replace(memory, memory.index_select(0, rows));
            srcMask = Replace(srcMask, srcMask.index_select(0, rows));
        }
    }

    // Like DecoderLayerCache: state survives the per-step dispose scope, the replaced tensor is freed now.
    private static Tensor Replace(Tensor? old, Tensor value)
    {
        value.MoveToOuterDisposeScope();
        old?.Dispose();
        return value;
    }

    public void Dispose()
    {
        prefix?.Dispose();
        memory.Dispose();
        srcMask.Dispose();
    }
}
