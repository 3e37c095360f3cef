using System.Diagnostics;
using TorchSharp;
using ZCode.Parallel.Mpi;
using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>
/// <see cref="ICommunicator"/> on Open MPI for CPU tensors (backend <c>mpi</c>). Every collective is started
/// non-blocking (MPI_I*) and polled with MPI_Test until done or until the timeout, which throws
/// <see cref="CommunicatorException"/> and leaves this communicator unusable (the request can never be cancelled).
/// Reductions run natively on float32/float64/int32/int64; bfloat16 and float16 are reduced in a float32 copy
/// (exact sums of bf16 inputs, then one rounding). Gathers, broadcasts and all-to-alls move raw bytes of any dtype.
/// MPI counts are C ints: larger transfers are split into pieces of at most <see cref="MaxChunk"/> units.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private static long maxChunk = int.MaxValue;
    private readonly MpiNative mpi;
    private IntPtr comm;
    private readonly bool owned;
    private readonly TimeSpan timeout;
    private string? broken;

    /// <summary>Largest count (elements, or bytes for untyped transfers) passed to one MPI call; lowering it
    /// exercises the chunked paths that transfers over 2^31 elements take (used by <c>zcode bench comm --max-chunk</c>).</summary>
    public static long MaxChunk
    {
        get => Interlocked.Read(ref maxChunk);
        set => Interlocked.Exchange(ref maxChunk, value is >= 1 and <= int.MaxValue
            ? value : throw new ArgumentOutOfRangeException(nameof(value), "must be in 1..2^31-1"));
    }

    public int Rank { get; }
    public int Size { get; }
    public string Backend => "mpi";

    public Device Device => CPU;

    /// <summary>Rank of this process in MPI_COMM_WORLD (named in errors; differs from <see cref="Rank"/> in a split group).</summary>
    public int WorldRank => MpiRuntime.WorldRank;

    private MpiCommunicator(MpiNative mpi, IntPtr comm, bool owned, TimeSpan timeout)
    {
        this.mpi = mpi;
        this.comm = comm;
        this.owned = owned;
        this.timeout = timeout;
        int rank = 0, size = 0;
        MpiRuntime.Check(mpi, mpi.Comm_rank(comm, &rank), "MPI_Comm_rank");
        MpiRuntime.Check(mpi, mpi.Comm_size(comm, &size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
    }

    /// <summary>MPI_COMM_WORLD, initializing MPI on first use. Without a launcher Open MPI starts a singleton world of 1.</summary>
    public static MpiCommunicator World(TimeSpan timeout)
    {
        var mpi = MpiRuntime.Start();
        return new MpiCommunicator(mpi, mpi.CommWorld, owned: false, timeout);
    }

    public void AllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum)
    {
        const string name = "all-reduce";
        Require(tensor, name, "tensor");
        if (Widened(tensor.dtype))
        {
            using var wide = tensor.to_type(ScalarType.Float32);
            AllReduce(wide, op);
            tensor.copy_(wide);
            return;
        }
        var (type, size) = (ReductionType(tensor.dtype, name), tensor.dtype.ElementSize());
        var data = TensorMemory.Pointer(tensor);
        long n = tensor.numel(), chunk = MaxChunk;
        for (long at = 0; at < n; at += chunk)
            Run(name, request => mpi.Iallreduce(MpiNative.InPlace, data + (nint)(at * size), (int)Math.Min(chunk, n - at), type, Op(op), comm, request));
        GC.KeepAlive(tensor);
    }

    public void Broadcast(Tensor tensor, int root)
    {
        const string name = "broadcast";
        Require(tensor, name, "tensor");
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), $"{name}: root {root} is not a rank of a group of {Size}");
        var data = TensorMemory.Pointer(tensor);
        long bytes = TensorMemory.Bytes(tensor), chunk = MaxChunk;
        for (long at = 0; at < bytes; at += chunk)
            Run(name, request => mpi.Ibcast(data + (nint)at, (int)Math.Min(chunk, bytes - at), mpi.Byte, root, comm, request));
        GC.KeepAlive(tensor);
    }

    public void AllGather(Tensor input, Tensor output)
    {
        const string name = "all-gather";
        Require(input, name, "input");
        Require(output, name, "output");
        SameDtype(name, input, output);
        long n = input.numel();
        if (output.numel() != n * Size)
            throw new ArgumentException($"{name}: output has {output.numel()} elements, expected {Size} x {n}");
        long bytes = TensorMemory.Bytes(input);
        if (bytes <= MaxChunk)
        {
            StartGather(name, TensorMemory.Pointer(input), TensorMemory.Pointer(output), (int)bytes);
            GC.KeepAlive(input); GC.KeepAlive(output);
            return;
        }
        using var rows = output.view(Size, n);
        using var flat = input.view(1, n);
        InColumnPieces(flat, rows, (send, receive, bytes) => StartGather(name, send, receive, bytes));
    }

    /// <summary>
    /// An all-gather or all-to-all too large for one call, in pieces of columns: <paramref name="recvRows"/> [Size, n]
    /// receives rank j's block in row j, from each rank's <paramref name="sendRows"/> ([1, n] for an all-gather, whose
    /// one block goes to every rank; [Size, n] for an all-to-all, whose row j goes to rank j). Each piece [at, at+len)
    /// of the columns goes through a contiguous staging buffer and is copied into place.
    /// </summary>
    private void InColumnPieces(Tensor sendRows, Tensor recvRows, Action<IntPtr, IntPtr, int> start)
    {
        long n = recvRows.shape[1], piece = PieceElements(recvRows.dtype), size = recvRows.dtype.ElementSize();
        for (long at = 0; at < n; at += piece)
        {
            long len = Math.Min(piece, n - at);
            using var scope = NewDisposeScope();
            var send = sendRows.narrow(1, at, len).contiguous();
            var staged = empty(new long[] { Size, len }, recvRows.dtype);
            start(TensorMemory.Pointer(send), TensorMemory.Pointer(staged), (int)(len * size));
            recvRows.narrow(1, at, len).copy_(staged);
        }
    }

    private void StartGather(string name, IntPtr send, IntPtr receive, int bytes)
        => Run(name, request => mpi.Iallgather(send, bytes, mpi.Byte, receive, bytes, mpi.Byte, comm, request));

    public void ReduceScatter(Tensor input, Tensor output, ReduceOp op = ReduceOp.Sum)
    {
        const string name = "reduce-scatter";
        Require(input, name, "input");
        Require(output, name, "output");
        SameDtype(name, input, output);
        long n = output.numel();
        if (input.numel() != n * Size)
            throw new ArgumentException($"{name}: input has {input.numel()} elements, expected {Size} x {n}");
        if (Widened(input.dtype))
        {
            using var wideIn = input.to_type(ScalarType.Float32);
            using var wideOut = output.to_type(ScalarType.Float32);
            ReduceScatter(wideIn, wideOut, op);
            output.copy_(wideOut);
            return;
        }
        var type = ReductionType(input.dtype, name);
        if (n <= MaxChunk)
        {
            StartReduceScatter(name, TensorMemory.Pointer(input), TensorMemory.Pointer(output), (int)n, type, op);
            GC.KeepAlive(input); GC.KeepAlive(output);
            return;
        }
        long piece = MaxChunk, size = input.dtype.ElementSize();
        using var rows = input.view(Size, n);
        var result = TensorMemory.Pointer(output);
        for (long at = 0; at < n; at += piece)
        {
            long len = Math.Min(piece, n - at);
            using var staged = rows.narrow(1, at, len).contiguous();
            StartReduceScatter(name, TensorMemory.Pointer(staged), result + (nint)(at * size), (int)len, type, op);
        }
        GC.KeepAlive(output);
    }

    private void StartReduceScatter(string name, IntPtr send, IntPtr receive, int count, IntPtr type, ReduceOp op)
        => Run(name, request => mpi.Ireduce_scatter_block(send, receive, count, type, Op(op), comm, request));

    public void AllToAll(Tensor input, Tensor output)
    {
        const string name = "all-to-all";
        Require(input, name, "input");
        Require(output, name, "output");
        SameDtype(name, input, output);
        if (input.numel() != output.numel() || input.numel() % Size != 0)
            throw new ArgumentException($"{name}: input ({input.numel()}) and output ({output.numel()}) must hold the same number of elements, divisible by {Size}");
        long block = input.numel() / Size, size = input.dtype.ElementSize();
        if (block * size <= MaxChunk)
        {
            StartAllToAll(name, TensorMemory.Pointer(input), TensorMemory.Pointer(output), (int)(block * size));
            GC.KeepAlive(input); GC.KeepAlive(output);
            return;
        }
        using var sendRows = input.view(Size, block);
        using var recvRows = output.view(Size, block);
        InColumnPieces(sendRows, recvRows, (send, receive, bytes) => StartAllToAll(name, send, receive, bytes));
    }

    private void StartAllToAll(string name, IntPtr send, IntPtr receive, int bytes)
        => Run(name, request => mpi.Ialltoall(send, bytes, mpi.Byte, receive, bytes, mpi.Byte, comm, request));

    /// <summary>Counts and displacements are passed in rows (one contiguous datatype per row), so buffers of up to
    /// 2^31-1 rows of up to 2 GiB each fit MPI's int arguments; larger ones are rejected.</summary>
    public void AllToAllV(Tensor input, long[] sendRows, Tensor output, long[] recvRows)
    {
        const string name = "all-to-all-v";
        Require(input, name, "input");
        Require(output, name, "output");
        SameDtype(name, input, output);
        if (sendRows.Length != Size || recvRows.Length != Size)
            throw new ArgumentException($"{name}: {sendRows.Length} send and {recvRows.Length} receive counts for a group of {Size}");
        long rowBytes = TensorMemory.RowBytes(input, output, name);
        var sendCounts = Ints(sendRows, input.shape[0], name, "sent");
        var recvCounts = Ints(recvRows, output.shape[0], name, "received");
        var sendDispl = Displacements(sendCounts);
        var recvDispl = Displacements(recvCounts);
        if (rowBytes > int.MaxValue)
            throw new ArgumentException($"{name}: rows of {rowBytes} bytes exceed MPI's 2^31-1 limit");
        if (rowBytes == 0) { Barrier(); return; }
        IntPtr rowType;
        int made;
        using (Serialized()) made = mpi.Type_contiguous((int)rowBytes, mpi.Byte, &rowType);
        MpiRuntime.Check(mpi, made, "MPI_Type_contiguous");
        using (Serialized()) made = mpi.Type_commit(&rowType);
        MpiRuntime.Check(mpi, made, "MPI_Type_commit");
        try
        {
            IntPtr request;
            int code;
            fixed (int* sc = sendCounts, sd = sendDispl, rc = recvCounts, rd = recvDispl)
            {
                using (Serialized())
                    code = mpi.Ialltoallv(TensorMemory.Pointer(input), sc, sd, rowType, TensorMemory.Pointer(output), rc, rd, rowType, comm, &request);
                Complete(name, code, request); // the count arrays stay pinned until the request completes
            }
            GC.KeepAlive(input); GC.KeepAlive(output);
        }
        finally
        {
            if (broken is null)
                using (Serialized()) mpi.Type_free(&rowType);
        }
    }

    public void Barrier() => Run("barrier", request => mpi.Ibarrier(comm, request));

    /// <summary>MPI_Comm_split has no non-blocking form: an all-gather of (color, key) first proves every rank is
    /// alive and inside the call (with the timeout), so the blocking split cannot hang on a dead peer.</summary>
    public ICommunicator Split(int color, int key)
    {
        if (color < 0) throw new ArgumentOutOfRangeException(nameof(color), "split: color must be at least 0");
        using (var mine = tensor(new[] { color, key }))
        using (var all = zeros(new long[] { Size * 2 }, ScalarType.Int32))
            AllGather(mine, all);
        IntPtr child;
        int code;
        using (Serialized()) code = mpi.Comm_split(comm, color, key, &child);
        MpiRuntime.Check(mpi, code, "MPI_Comm_split");
        return new MpiCommunicator(mpi, child, owned: true, timeout);
    }

    public void Dispose()
    {
        if (!owned || comm == IntPtr.Zero || broken is not null || !MpiRuntime.IsInitialized) return;
        var handle = comm;
        using (Serialized()) mpi.Comm_free(&handle);
        comm = IntPtr.Zero;
    }

    /// <summary>A call that starts a non-blocking MPI operation and stores its request.</summary>
    private delegate int Starter(IntPtr* request);

    /// <summary>Starts one non-blocking operation (serialized when the thread level needs it) and waits for it.</summary>
    private void Run(string name, Starter start)
    {
        IntPtr request;
        int code;
        using (Serialized()) code = start(&request);
        Complete(name, code, request);
    }

    private void Complete(string name, int code, IntPtr request)
    {
        if (code != MpiNative.Success)
            throw new CommunicatorException($"{name} failed on rank {WorldRank}: {mpi.ErrorString(code)}");
        var clock = Stopwatch.StartNew();
        while (true)
        {
            int done = 0, rc;
            using (Serialized()) rc = mpi.Test(&request, &done, IntPtr.Zero);
            if (rc != MpiNative.Success)
                throw new CommunicatorException($"{name} failed on rank {WorldRank}: {mpi.ErrorString(rc)}");
            if (done != 0) return;
            var waited = clock.Elapsed;
            if (waited > timeout)
            {
                broken = name;
                throw new CommunicatorException(
                    $"{name} timed out after {timeout.TotalSeconds:0.###} s on rank {WorldRank}{GroupNote()} (backend mpi): " +
                    "another rank died, hangs, or called a different collective (limit: parallel.timeout_s)");
            }
            // Progress happens inside MPI_Test; yield rather than spin so oversubscribed ranks on few cores still run.
            if (waited < TimeSpan.FromMilliseconds(50)) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    private string GroupNote() => Size == MpiRuntime.WorldSize && Rank == WorldRank ? "" : $" (rank {Rank} of {Size} in its group)";

    private void Require(Tensor t, string name, string what)
    {
        if (broken is not null)
            throw new CommunicatorException($"{name} on rank {WorldRank}: this communicator is unusable after its {broken} timed out");
        TensorMemory.Require(t, name, what, DeviceType.CPU, Backend);
    }

    private static void SameDtype(string name, Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype) throw new ArgumentException($"{name}: input is {a.dtype} but output is {b.dtype}");
    }

    private static bool Widened(ScalarType t) => t is ScalarType.BFloat16 or ScalarType.Float16;

    private IntPtr ReductionType(ScalarType t, string name) => t switch
    {
        ScalarType.Float32 => mpi.Float,
        ScalarType.Float64 => mpi.Double,
        ScalarType.Int32 => mpi.Int32,
        ScalarType.Int64 => mpi.Int64,
        _ => throw new ArgumentException($"{name}: backend mpi reduces float32, float64, int32, int64, bfloat16 and float16 tensors, not {t}"),
    };

    private IntPtr Op(ReduceOp op) => op == ReduceOp.Max ? mpi.OpMax : mpi.OpSum;

    private static long PieceElements(ScalarType t) => Math.Max(1, MaxChunk / t.ElementSize());

    private static int[] Ints(long[] rows, long available, string name, string what)
    {
        if (rows.Any(r => r < 0 || r > int.MaxValue))
            throw new ArgumentException($"{name}: {what} row counts must be in 0..2^31-1");
        if (rows.Sum() != available)
            throw new ArgumentException($"{name}: {what} row counts sum to {rows.Sum()} but the tensor has {available} rows");
        if (available > int.MaxValue)
            throw new ArgumentException($"{name}: {available} rows exceed MPI's 2^31-1 displacement limit");
        return rows.Select(r => (int)r).ToArray();
    }

    private static int[] Displacements(int[] counts)
    {
        var d = new int[counts.Length];
        for (int i = 1; i < counts.Length; i++) d[i] = d[i - 1] + counts[i - 1];
        return d;
    }

    private static GateScope Serialized() => new(MpiRuntime.Gate);

    private readonly struct GateScope : IDisposable
    {
        private readonly object? gate;
        public GateScope(object? gate) { this.gate = gate; if (gate is not null) Monitor.Enter(gate); }
        public void Dispose() { if (gate is not null) Monitor.Exit(gate); }
    }
}
