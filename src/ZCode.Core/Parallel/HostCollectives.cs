using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>
/// Collectives on small host values (logged sums, flags, byte counts, a run's timestamp). Each goes through a tensor on
/// the communicator's <see cref="ICommunicator.Device"/>, so the same call works on MPI (host memory) and NCCL (which
/// accepts only the rank's GPU memory).
/// </summary>
public static class HostCollectives
{
    /// <summary>Sums <paramref name="values"/> over the ranks in float64 (exact for token counts).</summary>
    public static double[] AllReduceSum(ICommunicator comm, double[] values) => AllReduce(comm, values, ReduceOp.Sum);

    /// <summary>Each of <paramref name="values"/>' largest value over the ranks (the slowest rank's time, the largest capacity).</summary>
    public static double[] AllReduceMax(ICommunicator comm, double[] values) => AllReduce(comm, values, ReduceOp.Max);

    private static double[] AllReduce(ICommunicator comm, double[] values, ReduceOp op)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (comm.Size == 1 || values.Length == 0) return values;
        using var t = tensor(values, ScalarType.Float64, comm.Device);
        comm.AllReduce(t, op);
        using var host = t.cpu();
        return host.data<double>().ToArray();
    }

    /// <summary>Every rank's <paramref name="value"/>, indexed by rank.</summary>
    public static long[] AllGather(ICommunicator comm, long value)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (comm.Size == 1) return [value];
        using var mine = tensor(new[] { value }, device: comm.Device);
        using var all = zeros(new long[] { comm.Size }, ScalarType.Int64, comm.Device);
        comm.AllGather(mine, all);
        using var host = all.cpu();
        return host.data<long>().ToArray();
    }

    /// <summary><paramref name="root"/>'s <paramref name="value"/> on every rank.</summary>
    public static long Broadcast(ICommunicator comm, long value, int root)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (comm.Size == 1) return value;
        using var t = tensor(new[] { value }, device: comm.Device);
        comm.Broadcast(t, root);
        return t.item<long>();
    }
}
