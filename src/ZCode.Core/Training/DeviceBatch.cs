using ZCode.Data;
using ZCode.Runtime;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// A training micro-batch on the model's device: source, decoder input, labels and each row's language index
/// (for routing statistics), uploaded together as one int64 buffer (one host-to-device copy, asynchronous on CUDA)
/// and split into views there.
/// </summary>
public sealed record DeviceBatch(Tensor Src, Tensor TgtIn, Tensor TgtOut, Tensor RowLanguages)
{
    public static DeviceBatch Upload(Batch batch, long[] rowLanguages, Device device)
    {
        int src = batch.SrcTokens.Length, tgt = batch.TgtIn.Length;
        var packed = new long[src + 2 * tgt + rowLanguages.Length];
        batch.SrcTokens.CopyTo(packed, 0);
        batch.TgtIn.CopyTo(packed, src);
        batch.TgtOut.CopyTo(packed, src + tgt);
        rowLanguages.CopyTo(packed, src + 2 * tgt);
        var all = HostTransfers.Upload(packed, [packed.LongLength], device);
        return new DeviceBatch(
            all.narrow(0, 0, src).view(batch.Size, batch.SrcLen),
            all.narrow(0, src, tgt).view(batch.Size, batch.TgtLen),
            all.narrow(0, src + tgt, tgt).view(batch.Size, batch.TgtLen),
            all.narrow(0, src + 2 * tgt, rowLanguages.Length));
    }
}
