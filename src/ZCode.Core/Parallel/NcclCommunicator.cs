using System.Diagnostics;
using TorchSharp;
using ZCode.Parallel.Nccl;
using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>
/// <see cref="ICommunicator"/> on NCCL for CUDA tensors (backend <c>nccl</c>), one GPU per process. Rank 0's
/// ncclUniqueId reaches the others over a bootstrap communicator (MPI). Collectives are queued on the legacy default
/// stream (stream 0, where LibTorch runs its kernels) and then polled with cudaStreamQuery and
/// ncclCommGetAsyncError until done; past the timeout the NCCL communicator is aborted (ncclCommAbort) and
/// <see cref="CommunicatorException"/> names the operation and rank. Polling makes each collective synchronous with
/// the host, which is what the trainer's step structure needs anyway. Reductions run natively in NCCL for
/// int8/uint8/int32/int64/float16/bfloat16/float32/float64; gathers, broadcasts and all-to-alls move bytes of any dtype.
/// All-to-all(v) is one ncclGroupStart/End of ncclSend/ncclRecv pairs.
/// </summary>
public sealed class NcclCommunicator : ICommunicator
{
    private static readonly IntPtr Stream = IntPtr.Zero;
    private readonly INcclApi api;
    private readonly ICommunicator bootstrap;
    private readonly bool ownsBootstrap;
    private readonly int device;
    private readonly DeviceType tensorDevice;
    private readonly TimeSpan timeout;
    private IntPtr comm;
    private string? broken;

    public int Rank => bootstrap.Rank;
    public int Size => bootstrap.Size;
    public string Backend => "nccl";

    public Device Device => new(tensorDevice, tensorDevice == DeviceType.CPU ? -1 : device);

    /// <summary>Joins every rank of <paramref name="bootstrap"/> into one NCCL communicator on CUDA device
    /// <paramref name="deviceIndex"/>; the bootstrap communicator is disposed with this one.</summary>
    public static NcclCommunicator Create(ICommunicator bootstrap, int deviceIndex, TimeSpan timeout)
        => new(NcclNativeApi.Load(), bootstrap, deviceIndex, timeout, DeviceType.CUDA, ownsBootstrap: true);

    /// <summary>The constructor the tests use with a fake <paramref name="api"/> and CPU tensors.</summary>
    internal NcclCommunicator(INcclApi api, ICommunicator bootstrap, int deviceIndex, TimeSpan timeout,
        DeviceType tensorDevice, bool ownsBootstrap)
    {
        this.api = api;
        this.bootstrap = bootstrap;
        this.ownsBootstrap = ownsBootstrap;
        device = deviceIndex;
        this.tensorDevice = tensorDevice;
        this.timeout = timeout;
        Cuda(api.CudaSetDevice(device), "cudaSetDevice", "init");
        var id = new byte[INcclApi.UniqueIdBytes];
        if (Rank == 0) Check(api.GetUniqueId(id), "ncclGetUniqueId", abortOnFail: false);
        using (var idTensor = tensor(id, ScalarType.Byte))
        {
            bootstrap.Broadcast(idTensor, 0);
            idTensor.data<byte>().CopyTo(id, 0);
        }
        // ncclCommInitRank blocks until every rank joins: a barrier with the timeout first catches dead peers.
        bootstrap.Barrier();
        Check(api.CommInitRank(out comm, Size, id, Rank), "ncclCommInitRank", abortOnFail: false);
    }

    public void AllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum)
    {
        const string name = "all-reduce";
        var p = Prepare(tensor, name, "tensor");
        Run(name, api.AllReduce(p, p, (ulong)tensor.numel(), ReductionType(tensor.dtype, name), Op(op), comm, Stream), tensor);
    }

    public void Broadcast(Tensor tensor, int root)
    {
        const string name = "broadcast";
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), $"{name}: root {root} is not a rank of a group of {Size}");
        var p = Prepare(tensor, name, "tensor");
        Run(name, api.Broadcast(p, p, (ulong)TensorMemory.Bytes(tensor), NcclDataType.Uint8, root, comm, Stream), tensor);
    }

    public void AllGather(Tensor input, Tensor output)
    {
        const string name = "all-gather";
        Pair(input, output, name, output.numel() == input.numel() * Size, $"output must hold {Size} x input elements");
        var (s, r) = (Prepare(input, name, "input"), Prepare(output, name, "output"));
        Run(name, api.AllGather(s, r, (ulong)TensorMemory.Bytes(input), NcclDataType.Uint8, comm, Stream), input, output);
    }

    public void ReduceScatter(Tensor input, Tensor output, ReduceOp op = ReduceOp.Sum)
    {
        const string name = "reduce-scatter";
        Pair(input, output, name, input.numel() == output.numel() * Size, $"input must hold {Size} x output elements");
        var (s, r) = (Prepare(input, name, "input"), Prepare(output, name, "output"));
        Run(name, api.ReduceScatter(s, r, (ulong)output.numel(), ReductionType(input.dtype, name), Op(op), comm, Stream), input, output);
    }

    public void AllToAll(Tensor input, Tensor output)
    {
        const string name = "all-to-all";
        Pair(input, output, name, input.numel() == output.numel() && input.numel() % Size == 0,
            $"input and output must hold the same number of elements, divisible by {Size}");
        long block = TensorMemory.Bytes(input) / Size;
        var counts = Enumerable.Repeat(block, Size).ToArray();
        Exchange(name, input, counts, output, counts, 1);
    }

    public void AllToAllV(Tensor input, long[] sendRows, Tensor output, long[] recvRows)
    {
        const string name = "all-to-all-v";
        Pair(input, output, name, sendRows.Length == Size && recvRows.Length == Size, $"send and receive counts need {Size} entries each");
        long rowBytes = TensorMemory.RowBytes(input, output, name);
        if (sendRows.Any(c => c < 0) || recvRows.Any(c => c < 0) || sendRows.Sum() != input.shape[0] || recvRows.Sum() != output.shape[0])
            throw new ArgumentException($"{name}: row counts must be non-negative and sum to the rows of input ({input.shape[0]}) and output ({output.shape[0]})");
        Exchange(name, input, sendRows, output, recvRows, rowBytes);
    }

    /// <summary>One group of sends and receives: <paramref name="send"/>[j] units of <paramref name="unitBytes"/> go to
    /// rank j from consecutive offsets; zero-sized transfers are skipped on both sides (the counts mirror each other).</summary>
    private void Exchange(string name, Tensor input, long[] send, Tensor output, long[] recv, long unitBytes)
    {
        var (s, r) = (Prepare(input, name, "input"), Prepare(output, name, "output"));
        Check(api.GroupStart(), "ncclGroupStart", abortOnFail: true, name);
        var status = NcclResult.Success;
        long sendAt = 0, recvAt = 0;
        for (int j = 0; j < Size && status == NcclResult.Success; j++)
        {
            if (send[j] > 0)
                status = api.Send(s + (nint)(sendAt * unitBytes), (ulong)(send[j] * unitBytes), NcclDataType.Uint8, j, comm, Stream);
            if (status == NcclResult.Success && recv[j] > 0)
                status = api.Recv(r + (nint)(recvAt * unitBytes), (ulong)(recv[j] * unitBytes), NcclDataType.Uint8, j, comm, Stream);
            sendAt += send[j];
            recvAt += recv[j];
        }
        var end = api.GroupEnd(); // always close the group, even after a failed call inside it
        Run(name, status != NcclResult.Success ? status : end, input, output);
    }

    public void Barrier()
    {
        // NCCL has no barrier: an all-reduce of one int on the device orders every rank the same way.
        using var one = zeros(1, ScalarType.Int32, device: Device);
        AllReduce(one);
    }

    /// <summary>Splits the bootstrap communicator (MPI_Comm_split semantics) and builds a new NCCL communicator on it.</summary>
    public ICommunicator Split(int color, int key)
    {
        Usable("split");
        var child = bootstrap.Split(color, key);
        try
        {
            return new NcclCommunicator(api, child, device, timeout, tensorDevice, ownsBootstrap: true);
        }
        catch
        {
            child.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (comm != IntPtr.Zero)
        {
            if (broken is null) api.CommDestroy(comm); // aborted communicators are already gone
            comm = IntPtr.Zero;
        }
        if (ownsBootstrap) bootstrap.Dispose();
    }

    private IntPtr Prepare(Tensor t, string name, string what)
    {
        Usable(name);
        TensorMemory.Require(t, name, what, tensorDevice, Backend);
        if (tensorDevice == DeviceType.CUDA && t.device_index != device)
            throw new ArgumentException($"{name}: {what} is on {t.device}, but rank {Rank}'s NCCL communicator uses cuda:{device}");
        Cuda(api.CudaSetDevice(device), "cudaSetDevice", name); // stream 0 is the current device's: this thread may be autograd's
        return TensorMemory.Pointer(t);
    }

    private void Usable(string name)
    {
        if (broken is not null)
            throw new CommunicatorException($"{name} on rank {Rank}: this NCCL communicator was aborted after {broken}");
    }

    private static void Pair(Tensor input, Tensor output, string name, bool shapesOk, string rule)
    {
        if (input.dtype != output.dtype) throw new ArgumentException($"{name}: input is {input.dtype} but output is {output.dtype}");
        if (!shapesOk) throw new ArgumentException($"{name}: {rule} (input {input.numel()}, output {output.numel()})");
    }

    /// <summary>Checks the enqueue status, then waits for stream 0 with the timeout; aborts the communicator on failure.</summary>
    private void Run(string name, NcclResult enqueued, params Tensor[] keepAlive)
    {
        Check(enqueued, name, abortOnFail: true);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            int q = api.CudaStreamQuery(Stream);
            if (q == INcclApi.CudaSuccess) break;
            if (q != INcclApi.CudaErrorNotReady)
            {
                Abort($"{name} (CUDA error)");
                throw new CommunicatorException($"{name} failed on rank {Rank} (backend nccl): CUDA error {q}: {api.CudaErrorString(q)}");
            }
            if (api.CommGetAsyncError(comm, out var async) == NcclResult.Success && async is not (NcclResult.Success or NcclResult.InProgress))
                Check(async, name, abortOnFail: true);
            var waited = clock.Elapsed;
            if (waited > timeout)
            {
                Abort($"{name} timed out");
                throw new CommunicatorException(
                    $"{name} timed out after {timeout.TotalSeconds:0.###} s on rank {Rank} (backend nccl): another rank died, hangs, " +
                    "or called a different collective; the NCCL communicator was aborted (limit: parallel.timeout_s)");
            }
            if (waited < TimeSpan.FromMilliseconds(50)) Thread.Yield();
            else Thread.Sleep(1);
        }
        GC.KeepAlive(keepAlive);
    }

    private void Check(NcclResult result, string call, bool abortOnFail, string? op = null)
    {
        if (result is NcclResult.Success or NcclResult.InProgress) return;
        var detail = comm == IntPtr.Zero ? "" : api.GetLastError(comm);
        if (abortOnFail) Abort($"{op ?? call} failed");
        throw new CommunicatorException($"{op ?? call} failed on rank {Rank} (backend nccl): {Describe(result, api.GetErrorString(result))}" +
                                        (string.IsNullOrWhiteSpace(detail) ? "" : $" ({detail.Trim()})"));
    }

    /// <summary>ncclResult_t name, NCCL's own text, and what usually causes it.</summary>
    public static string Describe(NcclResult result, string ncclText)
    {
        string hint = result switch
        {
            NcclResult.UnhandledCudaError => "a CUDA call failed inside NCCL (out of memory, bad pointer, or device fault)",
            NcclResult.SystemError => "a system call or the network failed (check NCCL_SOCKET_IFNAME, shared memory limits)",
            NcclResult.InternalError => "NCCL internal error (version mismatch between ranks, or a bug)",
            NcclResult.InvalidArgument => "invalid argument (tensor not on this rank's GPU, or wrong count)",
            NcclResult.InvalidUsage => "invalid usage (mismatched collectives across ranks, or a communicator used after abort)",
            NcclResult.RemoteError => "a peer rank failed or its connection dropped",
            _ => "unknown NCCL status",
        };
        var text = string.IsNullOrWhiteSpace(ncclText) ? "" : $": {ncclText.Trim()}";
        return $"nccl{result}{text} - {hint}";
    }

    private void Abort(string why)
    {
        if (broken is not null || comm == IntPtr.Zero) return;
        broken = why;
        api.CommAbort(comm);
    }

    private void Cuda(int code, string call, string op)
    {
        if (code != INcclApi.CudaSuccess)
            throw new CommunicatorException($"{op}: {call}({device}) failed on rank {Rank} (backend nccl): {api.CudaErrorString(code)}");
    }

    private static NcclDataType ReductionType(ScalarType t, string name) => t switch
    {
        ScalarType.Int8 => NcclDataType.Int8,
        ScalarType.Byte => NcclDataType.Uint8,
        ScalarType.Int32 => NcclDataType.Int32,
        ScalarType.Int64 => NcclDataType.Int64,
        ScalarType.Float16 => NcclDataType.Float16,
        ScalarType.BFloat16 => NcclDataType.BFloat16,
        ScalarType.Float32 => NcclDataType.Float32,
        ScalarType.Float64 => NcclDataType.Float64,
        _ => throw new ArgumentException($"{name}: backend nccl reduces int8, uint8, int32, int64, float16, bfloat16, float32 and float64 tensors, not {t}"),
    };

    private static NcclRedOp Op(ReduceOp op) => op == ReduceOp.Max ? NcclRedOp.Max : NcclRedOp.Sum;
}
