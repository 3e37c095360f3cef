using System.Runtime.InteropServices;

namespace ZCode.Parallel.Nccl;

/// <summary>
/// <see cref="INcclApi"/> on libnccl.so.2 and the CUDA runtime (libcudart), resolved with NativeLibrary on first
/// use only, so zcode builds and runs everywhere and needs NCCL only for backend nccl.
/// </summary>
internal sealed unsafe class NcclNativeApi : INcclApi
{
    [StructLayout(LayoutKind.Sequential)]
    private struct UniqueId { public fixed byte Bytes[INcclApi.UniqueIdBytes]; }

    private static readonly string[] NcclNames = ["libnccl.so.2", "libnccl.so"];
    private static readonly string[] CudartNames = ["libcudart.so", "libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0"];
    private static NcclNativeApi? loaded;
    private static readonly object Gate = new();

    private readonly delegate* unmanaged<UniqueId*, int> getUniqueId;
    private readonly delegate* unmanaged<IntPtr*, int, UniqueId, int, int> commInitRank;
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> allReduce;
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> broadcast;
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, IntPtr, int> allGather;
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> reduceScatter;
    private readonly delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int> send;
    private readonly delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int> recv;
    private readonly delegate* unmanaged<int> groupStart, groupEnd;
    private readonly delegate* unmanaged<IntPtr, int*, int> commGetAsyncError;
    private readonly delegate* unmanaged<IntPtr, int> commAbort, commDestroy;
    private readonly delegate* unmanaged<int, IntPtr> getErrorString;
    private readonly delegate* unmanaged<IntPtr, IntPtr> getLastError; // NCCL >= 2.13; null before
    private readonly delegate* unmanaged<int, int> cudaSetDevice;
    private readonly delegate* unmanaged<IntPtr, int> cudaStreamQuery;
    private readonly delegate* unmanaged<int, IntPtr> cudaGetErrorString;

    /// <summary>The process-wide binding; throws <see cref="CommunicatorException"/> naming what to install.</summary>
    public static NcclNativeApi Load()
    {
        lock (Gate)
            return loaded ??= new NcclNativeApi(Open(NcclNames, "NCCL (libnccl.so.2: the libnccl2 package, or pip nvidia-nccl-cu12 next to torch)"),
                Open(CudartNames, "the CUDA runtime (libcudart.so: the CUDA toolkit, or pip nvidia-cuda-runtime-cu12)"));
    }

    private static IntPtr Open(string[] names, string what)
    {
        foreach (var name in names)
            if (NativeLibrary.TryLoad(name, out var lib))
                return lib;
        throw new CommunicatorException($"backend nccl: cannot load {what}; put its directory on LD_LIBRARY_PATH " +
                                        "(backend nccl needs CUDA GPUs; use parallel.backend mpi on CPU)");
    }

    private NcclNativeApi(IntPtr nccl, IntPtr cudart)
    {
        IntPtr N(string name) => NativeLibrary.GetExport(nccl, name);
        IntPtr C(string name) => NativeLibrary.GetExport(cudart, name);
        getUniqueId = (delegate* unmanaged<UniqueId*, int>)N("ncclGetUniqueId");
        commInitRank = (delegate* unmanaged<IntPtr*, int, UniqueId, int, int>)N("ncclCommInitRank");
        allReduce = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)N("ncclAllReduce");
        broadcast = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)N("ncclBroadcast");
        allGather = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, IntPtr, int>)N("ncclAllGather");
        reduceScatter = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)N("ncclReduceScatter");
        send = (delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int>)N("ncclSend");
        recv = (delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int>)N("ncclRecv");
        groupStart = (delegate* unmanaged<int>)N("ncclGroupStart");
        groupEnd = (delegate* unmanaged<int>)N("ncclGroupEnd");
        commGetAsyncError = (delegate* unmanaged<IntPtr, int*, int>)N("ncclCommGetAsyncError");
        commAbort = (delegate* unmanaged<IntPtr, int>)N("ncclCommAbort");
        commDestroy = (delegate* unmanaged<IntPtr, int>)N("ncclCommDestroy");
        getErrorString = (delegate* unmanaged<int, IntPtr>)N("ncclGetErrorString");
        getLastError = NativeLibrary.TryGetExport(nccl, "ncclGetLastError", out var last) ? (delegate* unmanaged<IntPtr, IntPtr>)last : null;
        cudaSetDevice = (delegate* unmanaged<int, int>)C("cudaSetDevice");
        cudaStreamQuery = (delegate* unmanaged<IntPtr, int>)C("cudaStreamQuery");
        cudaGetErrorString = (delegate* unmanaged<int, IntPtr>)C("cudaGetErrorString");
    }

    public NcclResult GetUniqueId(byte[] id)
    {
        UniqueId u;
        var r = (NcclResult)getUniqueId(&u);
        new ReadOnlySpan<byte>(u.Bytes, INcclApi.UniqueIdBytes).CopyTo(id);
        return r;
    }

    public NcclResult CommInitRank(out IntPtr comm, int nranks, byte[] id, int rank)
    {
        UniqueId u;
        id.AsSpan(0, INcclApi.UniqueIdBytes).CopyTo(new Span<byte>(u.Bytes, INcclApi.UniqueIdBytes));
        IntPtr c;
        var r = (NcclResult)commInitRank(&c, nranks, u, rank);
        comm = c;
        return r;
    }

    public NcclResult AllReduce(IntPtr s, IntPtr r, ulong count, NcclDataType type, NcclRedOp op, IntPtr comm, IntPtr stream)
        => (NcclResult)allReduce(s, r, (nuint)count, (int)type, (int)op, comm, stream);
    public NcclResult Broadcast(IntPtr s, IntPtr r, ulong count, NcclDataType type, int root, IntPtr comm, IntPtr stream)
        => (NcclResult)broadcast(s, r, (nuint)count, (int)type, root, comm, stream);
    public NcclResult AllGather(IntPtr s, IntPtr r, ulong sendCount, NcclDataType type, IntPtr comm, IntPtr stream)
        => (NcclResult)allGather(s, r, (nuint)sendCount, (int)type, comm, stream);
    public NcclResult ReduceScatter(IntPtr s, IntPtr r, ulong recvCount, NcclDataType type, NcclRedOp op, IntPtr comm, IntPtr stream)
        => (NcclResult)reduceScatter(s, r, (nuint)recvCount, (int)type, (int)op, comm, stream);
    public NcclResult Send(IntPtr b, ulong count, NcclDataType type, int peer, IntPtr comm, IntPtr stream)
        => (NcclResult)send(b, (nuint)count, (int)type, peer, comm, stream);
    public NcclResult Recv(IntPtr b, ulong count, NcclDataType type, int peer, IntPtr comm, IntPtr stream)
        => (NcclResult)recv(b, (nuint)count, (int)type, peer, comm, stream);
    public NcclResult GroupStart() => (NcclResult)groupStart();
    public NcclResult GroupEnd() => (NcclResult)groupEnd();

    public NcclResult CommGetAsyncError(IntPtr comm, out NcclResult asyncError)
    {
        int e = 0;
        var r = (NcclResult)commGetAsyncError(comm, &e);
        asyncError = (NcclResult)e;
        return r;
    }

    public NcclResult CommAbort(IntPtr comm) => (NcclResult)commAbort(comm);
    public NcclResult CommDestroy(IntPtr comm) => (NcclResult)commDestroy(comm);
    public string GetErrorString(NcclResult result) => Marshal.PtrToStringUTF8(getErrorString((int)result)) ?? "";
    public string GetLastError(IntPtr comm) => getLastError == null ? "" : Marshal.PtrToStringUTF8(getLastError(comm)) ?? "";
    public int CudaSetDevice(int device) => cudaSetDevice(device);
    public int CudaStreamQuery(IntPtr stream) => cudaStreamQuery(stream);
    public string CudaErrorString(int error) => Marshal.PtrToStringUTF8(cudaGetErrorString(error)) ?? $"CUDA error {error}";
}
