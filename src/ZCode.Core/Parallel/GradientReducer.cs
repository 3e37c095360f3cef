using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>
/// Bucketed gradient reduction and parameter gathering over a <see cref="FlatPartition"/>'s group: one collective per
/// bucket (W pieces of at most c elements), through one reusable flat buffer. Gradients are summed, not averaged:
/// every micro-batch's loss is already divided by the global step's target tokens, so the sum over ranks is the
/// single-process gradient of the same global batch.
/// </summary>
public sealed class GradientReducer : IDisposable
{
    private readonly FlatPartition part;
    private readonly ICommunicator comm;
    private readonly Tensor buffer;

    public GradientReducer(FlatPartition partition, ICommunicator group, Device device)
    {
        if (group.Size != partition.Ranks)
            throw new ArgumentException($"partition over {partition.Ranks} ranks, group of {group.Size}");
        part = partition;
        comm = group;
        buffer = zeros(new[] { partition.Ranks * partition.Chunk }, ScalarType.Float32, device).DetachFromDisposeScope();
    }

    public FlatPartition Partition => part;

    /// <summary>Bytes of the bucket buffer.</summary>
    public long BufferBytes => buffer.numel() * 4;

    private Tensor Bucket(long length) => buffer.narrow(0, 0, part.Ranks * length);

    /// <summary>The bucket of chunk [start, start + n) of every rank's shard, filled with this rank's gradients there
    /// (rank r's piece at [r * n, (r + 1) * n)), ready to be reduced.</summary>
    private Tensor GradientBucket(long start, long n)
    {
        var bucket = Bucket(n);
        for (int r = 0; r < part.Ranks; r++) part.GatherGrads(r * part.ShardSize + start, bucket.narrow(0, r * n, n));
        return bucket;
    }

    /// <summary>ZeRO 0: every rank ends with the full summed gradient in each parameter's .grad.</summary>
    public void AllReduceGradients()
    {
        if (part.Ranks == 1) return;
        using var scope = NewDisposeScope();
        for (int k = 0; k < part.Buckets; k++)
        {
            var (start, n) = part.ChunkOf(k);
            var bucket = GradientBucket(start, n);
            comm.AllReduce(bucket);
            for (int r = 0; r < part.Ranks; r++) part.ScatterGrads(r * part.ShardSize + start, bucket.narrow(0, r * n, n));
        }
    }

    /// <summary>
    /// ZeRO 1 (<paramref name="reduceScatter"/> false: all-reduce, keep own piece) or ZeRO 2 (reduce-scatter: each
    /// rank only ever receives its own slice): this rank's slice of the summed gradient lands in
    /// <paramref name="shardGrad"/> [S].
    /// </summary>
    public void ReduceToShard(Tensor shardGrad, bool reduceScatter)
    {
        using var scope = NewDisposeScope();
        for (int k = 0; k < part.Buckets; k++)
        {
            var (start, n) = part.ChunkOf(k);
            var mine = shardGrad.narrow(0, start, n);
            if (part.Ranks == 1)
            {
                part.GatherGrads(start, mine);
                continue;
            }
            var bucket = GradientBucket(start, n);
            if (reduceScatter)
                comm.ReduceScatter(bucket, mine);
            else
            {
                comm.AllReduce(bucket);
                mine.copy_(bucket.narrow(0, part.Rank * n, n));
            }
        }
    }

    /// <summary>Every rank's updated slice <paramref name="shardParams"/> [S] is gathered into the parameters of all
    /// ranks (after a ZeRO update).</summary>
    public void AllGatherParameters(Tensor shardParams)
    {
        using var scope = NewDisposeScope();
        for (int k = 0; k < part.Buckets; k++)
        {
            var (start, n) = part.ChunkOf(k);
            var mine = shardParams.narrow(0, start, n);
            if (part.Ranks == 1)
            {
                part.ScatterParams(start, mine);
                continue;
            }
            var bucket = Bucket(n);
            comm.AllGather(mine, bucket);
            for (int r = 0; r < part.Ranks; r++) part.ScatterParams(r * part.ShardSize + start, bucket.narrow(0, r * n, n));
        }
    }

    public void Dispose() => buffer.Dispose();
}
