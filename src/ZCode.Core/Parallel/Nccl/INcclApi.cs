namespace ZCode.Parallel.Nccl;

/// <summary>ncclResult_t values.</summary>
public enum NcclResult
{
    Success = 0, UnhandledCudaError = 1, SystemError = 2, InternalError = 3, InvalidArgument = 4,
    InvalidUsage = 5, RemoteError = 6, InProgress = 7,
}

/// <summary>ncclDataType_t values.</summary>
public enum NcclDataType { Int8 = 0, Uint8 = 1, Int32 = 2, Uint32 = 3, Int64 = 4, Uint64 = 5, Float16 = 6, Float32 = 7, Float64 = 8, BFloat16 = 9 }

/// <summary>ncclRedOp_t values (the predefined ones).</summary>
public enum NcclRedOp { Sum = 0, Prod = 1, Max = 2, Min = 3, Avg = 4 }

/// <summary>
/// The NCCL and CUDA-runtime calls <see cref="NcclCommunicator"/> makes, one method per C function with the same
/// arguments (pointers, size_t counts, enum codes), so the communicator's logic is testable against a fake without a
/// GPU. Methods return the C function's status code (ncclResult_t, or cudaError_t for the Cuda* ones).
/// </summary>
public interface INcclApi
{
    public const int UniqueIdBytes = 128;   // NCCL_UNIQUE_ID_BYTES
    public const int CudaSuccess = 0, CudaErrorNotReady = 600;

    NcclResult GetUniqueId(byte[] id);
    NcclResult CommInitRank(out IntPtr comm, int nranks, byte[] id, int rank);
    NcclResult AllReduce(IntPtr send, IntPtr recv, ulong count, NcclDataType type, NcclRedOp op, IntPtr comm, IntPtr stream);
    NcclResult Broadcast(IntPtr send, IntPtr recv, ulong count, NcclDataType type, int root, IntPtr comm, IntPtr stream);
    NcclResult AllGather(IntPtr send, IntPtr recv, ulong sendCount, NcclDataType type, IntPtr comm, IntPtr stream);
    NcclResult ReduceScatter(IntPtr send, IntPtr recv, ulong recvCount, NcclDataType type, NcclRedOp op, IntPtr comm, IntPtr stream);
    NcclResult Send(IntPtr buffer, ulong count, NcclDataType type, int peer, IntPtr comm, IntPtr stream);
    NcclResult Recv(IntPtr buffer, ulong count, NcclDataType type, int peer, IntPtr comm, IntPtr stream);
    NcclResult GroupStart();
    NcclResult GroupEnd();
    NcclResult CommGetAsyncError(IntPtr comm, out NcclResult asyncError);
    NcclResult CommAbort(IntPtr comm);
    NcclResult CommDestroy(IntPtr comm);
    string GetErrorString(NcclResult result);
    /// <summary>ncclGetLastError: the last failure's detail text, or empty.</summary>
    string GetLastError(IntPtr comm);

    int CudaSetDevice(int device);
    /// <summary>cudaStreamQuery: <see cref="CudaSuccess"/> when all work queued on the stream is done,
    /// <see cref="CudaErrorNotReady"/> while it runs, another cudaError_t on failure.</summary>
    int CudaStreamQuery(IntPtr stream);
    string CudaErrorString(int error);
}
