using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>
/// One decoder layer's incremental state: self-attention keys/values of the positions decoded so far and the
/// cross-attention keys/values of the source (computed once). All tensors are [B, H, L, dh].
/// </summary>
public sealed class DecoderLayerCache : IDisposable
{
    public DecoderLayerCache(Tensor crossK, Tensor crossV)
    {
        CrossK = crossK;
        CrossV = crossV;
    }

    public Tensor? SelfK { get; private set; }
    public Tensor? SelfV { get; private set; }
    public Tensor CrossK { get; private set; }
    public Tensor CrossV { get; private set; }

    /// <summary>Appends the newest position's keys/values along the length axis.</summary>
    public void AppendSelf(Tensor k, Tensor v)
    {
        SelfK = Replace(SelfK, SelfK is null ? k.alias() : cat([SelfK, k], 2));
        SelfV = Replace(SelfV, SelfV is null ? v.alias() : cat([SelfV, v], 2));
    }

    /// <summary>Keeps rows <paramref name="rows"/> (beam reordering); the source side too when the batch shrank.</summary>
    public void Reorder(Tensor rows, bool sourceRowsChanged)
    {
        if (SelfK is not null) SelfK = Replace(SelfK, SelfK.index_select(0, rows));
        if (SelfV is not null) SelfV = Replace(SelfV, SelfV.index_select(0, rows));
        if (sourceRowsChanged)
        {
            CrossK = Replace(CrossK, CrossK.index_select(0, rows))!;
            CrossV = Replace(CrossV, CrossV.index_select(0, rows))!;
        }
    }

    // State outlives the per-step dispose scope: new tensors move to the enclosing (per-batch) scope and the
    // tensors they replace are freed now, so memory stays at one copy of the cache.
    private static Tensor Replace(Tensor? old, Tensor value)
    {
        value.MoveToOuterDisposeScope();
        old?.Dispose();
        return value;
    }

    public void Dispose()
    {
        SelfK?.Dispose();
        SelfV?.Dispose();
        CrossK.Dispose();
        CrossV.Dispose();
    }
}

/// <summary>The incremental decoder state of a whole model: one cache per decoder layer, the source mask and the step.</summary>
public sealed class DecoderCache : IDisposable
{
    internal DecoderCache(IReadOnlyList<DecoderLayerCache> layers, Tensor sourceMask)
    {
        Layers = layers;
        SourceMask = sourceMask;
    }

    public IReadOnlyList<DecoderLayerCache> Layers { get; }

    /// <summary>[B, Ls] source padding mask (true = real token).</summary>
    public Tensor SourceMask { get; private set; }

    /// <summary>Positions decoded so far (the next token's position).</summary>
    public int Length { get; internal set; }

    /// <summary>Row b of the next step continues row rows[b] of this one; the source side follows when it changed.</summary>
    public void Reorder(Tensor rows, bool sourceRowsChanged)
    {
        foreach (var layer in Layers)
            layer.Reorder(rows, sourceRowsChanged);
        if (sourceRowsChanged)
        {
            var mask = SourceMask.index_select(0, rows).MoveToOuterDisposeScope();
            SourceMask.Dispose();
            SourceMask = mask;
        }
    }

    public void Dispose()
    {
        foreach (var layer in Layers)
            layer.Dispose();
        SourceMask.Dispose();
    }
}
