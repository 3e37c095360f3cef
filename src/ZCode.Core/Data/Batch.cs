using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Data;

/// <summary>
/// A padded batch of examples, row-major int64 arrays ready for tensors:
/// <see cref="SrcTokens"/> [B, Ls] (tag, tokens, EOS, pad...), <see cref="TgtIn"/> [B, Lt] (BOS, tokens, pad...) and
/// <see cref="TgtOut"/> [B, Lt] (tokens, EOS, pad...). Padding uses the pad id given to <see cref="Collate"/>; the
/// model derives its masks from it.
/// </summary>
public sealed class Batch
{
    private Batch(int size, int srcLen, int tgtLen, long[] src, long[] tgtIn, long[] tgtOut, int srcTokens,
        int tgtTokens, Example[] examples)
    {
        Size = size;
        SrcLen = srcLen;
        TgtLen = tgtLen;
        SrcTokens = src;
        TgtIn = tgtIn;
        TgtOut = tgtOut;
        SrcTokenCount = srcTokens;
        TgtTokenCount = tgtTokens;
        Examples = examples;
    }

    /// <summary>B, the number of rows.</summary>
    public int Size { get; }
    /// <summary>Ls, the longest source in the batch.</summary>
    public int SrcLen { get; }
    /// <summary>Lt, the longest target (EOS included) in the batch.</summary>
    public int TgtLen { get; }
    /// <summary>[B, Ls] row-major.</summary>
    public long[] SrcTokens { get; }
    /// <summary>[B, Lt] row-major: BOS + target[..^1], the decoder input.</summary>
    public long[] TgtIn { get; }
    /// <summary>[B, Lt] row-major: target (tokens + EOS), the labels.</summary>
    public long[] TgtOut { get; }
    /// <summary>Non-pad source tokens.</summary>
    public int SrcTokenCount { get; }
    /// <summary>Non-pad target tokens (labels), the loss normaliser.</summary>
    public int TgtTokenCount { get; }
    /// <summary>The rows' examples (languages, task, unpadded ids), in row order.</summary>
    public IReadOnlyList<Example> Examples { get; }

    /// <summary>B × max(Ls, Lt): what the token budget counts.</summary>
    public int PaddedTokens => Size * Math.Max(SrcLen, TgtLen);

    /// <summary>Pads <paramref name="examples"/> into a batch; the decoder input starts with <paramref name="bosId"/>.</summary>
    public static Batch Collate(IReadOnlyList<Example> examples, int padId, int bosId)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("a batch needs at least one example", nameof(examples));
        var b = examples.Count;
        var ls = 0;
        var lt = 0;
        foreach (var e in examples)
        {
            if (e.Source.Length == 0 || e.Target.Length == 0)
                throw new ArgumentException("examples must have a non-empty source and target", nameof(examples));
            ls = Math.Max(ls, e.Source.Length);
            lt = Math.Max(lt, e.Target.Length);
        }
        var src = new long[b * ls];
        var tgtIn = new long[b * lt];
        var tgtOut = new long[b * lt];
        if (padId != 0)
        {
            Array.Fill(src, padId);
            Array.Fill(tgtIn, padId);
            Array.Fill(tgtOut, padId);
        }
        int srcCount = 0, tgtCount = 0;
        for (var r = 0; r < b; r++)
        {
            var e = examples[r];
            for (var j = 0; j < e.Source.Length; j++) src[r * ls + j] = e.Source[j];
            tgtIn[r * lt] = bosId;
            for (var j = 0; j < e.Target.Length; j++)
            {
                tgtOut[r * lt + j] = e.Target[j];
                if (j + 1 < e.Target.Length) tgtIn[r * lt + j + 1] = e.Target[j];
            }
            srcCount += e.Source.Length;
            tgtCount += e.Target.Length;
        }
        return new Batch(b, ls, lt, src, tgtIn, tgtOut, srcCount, tgtCount, examples.ToArray());
    }

    /// <summary>The three int64 tensors [B, Ls], [B, Lt], [B, Lt] on <paramref name="device"/> (CPU when null).</summary>
    public (Tensor Src, Tensor TgtIn, Tensor TgtOut) ToTensors(Device? device = null)
    {
        var src = torch.tensor(SrcTokens, new long[] { Size, SrcLen }, ScalarType.Int64);
        var tgtIn = torch.tensor(TgtIn, new long[] { Size, TgtLen }, ScalarType.Int64);
        var tgtOut = torch.tensor(TgtOut, new long[] { Size, TgtLen }, ScalarType.Int64);
        if (device is null || device.type == DeviceType.CPU) return (src, tgtIn, tgtOut);
        using (src) using (tgtIn) using (tgtOut)
            return (src.to(device), tgtIn.to(device), tgtOut.to(device));
    }
}
