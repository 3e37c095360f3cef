using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>Element-wise reduction applied by all-reduce and reduce-scatter.</summary>
public enum ReduceOp { Sum, Max }

/// <summary>
/// A group of ranks and the collectives zcode needs (docs/ARCHITECTURE.md §3). Every rank of the group calls the same
/// collectives in the same order with tensors of the same dtype and shape (except the variable all-to-all counts).
/// Tensors must be contiguous and live on the backend's device; results are written in place or into the given
/// output tensor, never allocated by the backend. Every call honours the communicator's timeout and throws
/// <see cref="CommunicatorException"/> (naming the rank when it is known) instead of hanging.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's rank in the group, 0-based.</summary>
    int Rank { get; }

    /// <summary>Number of ranks in the group.</summary>
    int Size { get; }

    /// <summary>Backend name as written in config: local, mpi, nccl (or a test double's name).</summary>
    string Backend { get; }

    /// <summary>Where the tensors handed to this communicator must live: the CPU for local and mpi, the rank's GPU
    /// for nccl. Host-side values (counts, flags, names) travel through <see cref="HostCollectives"/>, which moves
    /// them here and back.</summary>
    Device Device { get; }

    /// <summary>Reduces <paramref name="tensor"/> over all ranks, in place on every rank.</summary>
    void AllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum);

    /// <summary>Copies root's <paramref name="tensor"/> into every other rank's tensor.</summary>
    void Broadcast(Tensor tensor, int root);

    /// <summary>Rank r's <paramref name="input"/> lands at elements [r*n, (r+1)*n) of every rank's
    /// <paramref name="output"/> (n = input.numel(); output.numel() = Size * n).</summary>
    void AllGather(Tensor input, Tensor output);

    /// <summary>Reduces <paramref name="input"/> (Size * n elements) over ranks; rank r receives elements
    /// [r*n, (r+1)*n) of the reduction in <paramref name="output"/> (n elements).</summary>
    void ReduceScatter(Tensor input, Tensor output, ReduceOp op = ReduceOp.Sum);

    /// <summary>Equal-split all-to-all along dim 0: block j of <paramref name="input"/> (dim 0 split into Size equal
    /// blocks) goes to rank j, and block j of <paramref name="output"/> comes from rank j.</summary>
    void AllToAll(Tensor input, Tensor output);

    /// <summary>Variable-split all-to-all along dim 0: <paramref name="sendRows"/>[j] rows of <paramref name="input"/>
    /// (consecutive, in rank order) go to rank j; <paramref name="recvRows"/>[j] rows of <paramref name="output"/>
    /// come from rank j. A row is everything after dim 0.</summary>
    void AllToAllV(Tensor input, long[] sendRows, Tensor output, long[] recvRows);

    /// <summary>Returns when every rank has entered the barrier.</summary>
    void Barrier();

    /// <summary>Collective over this group: ranks with the same <paramref name="color"/> form a new group, ordered
    /// by <paramref name="key"/> then by rank (MPI_Comm_split semantics).</summary>
    ICommunicator Split(int color, int key);
}

/// <summary>A collective failed or timed out; the message names the operation and, when known, the failing rank.</summary>
public sealed class CommunicatorException : Exception
{
    public CommunicatorException(string message) : base(message) { }
    public CommunicatorException(string message, Exception inner) : base(message, inner) { }
}
