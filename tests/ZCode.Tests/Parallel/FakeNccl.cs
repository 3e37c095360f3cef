using System.Collections.Concurrent;
using ZCode.Parallel.Nccl;

namespace ZCode.Tests.Parallel;

/// <summary>
/// Fake <see cref="INcclApi"/> for tests without a GPU: ranks are threads of one process sharing a
/// <see cref="FakeNcclWorld"/>, and the collectives really move data between the (CPU) buffers they are given, so a
/// wrong pointer, count, dtype or send/receive pairing shows up as wrong values. Each call is logged, and failures
/// (a hanging stream, an error status, an asynchronous error) can be injected.
/// </summary>
internal sealed unsafe class FakeNccl(FakeNcclWorld world) : INcclApi
{
    private readonly Dictionary<IntPtr, (FakeNcclWorld.Group Group, int Rank)> comms = new();
    private List<(bool Send, IntPtr Buffer, ulong Bytes, int Peer, IntPtr Comm)>? pending;
    private int nextComm = 1;

    public List<string> Calls { get; } = new();
    public bool StreamHangs { get; set; }
    public NcclResult AsyncError { get; set; } = NcclResult.Success;
    public NcclResult FailCollectives { get; set; } = NcclResult.Success;
    public NcclResult FailSend { get; set; } = NcclResult.Success;
    public int Aborted { get; private set; }
    public int Destroyed { get; private set; }
    public List<int> Devices { get; } = new();

    private void Log(string call) { lock (Calls) Calls.Add(call); }

    public NcclResult GetUniqueId(byte[] id)
    {
        var fresh = world.NewId();
        fresh.CopyTo(id, 0);
        Log("GetUniqueId");
        return NcclResult.Success;
    }

    public NcclResult CommInitRank(out IntPtr comm, int nranks, byte[] id, int rank)
    {
        comm = nextComm++;
        comms[comm] = (world.Join(id, nranks), rank);
        Log($"CommInitRank {nranks} {rank} {id[0]}");
        return NcclResult.Success;
    }

    private (FakeNcclWorld.Group G, int R) Of(IntPtr comm) => comms[comm];

    public NcclResult AllReduce(IntPtr send, IntPtr recv, ulong count, NcclDataType type, NcclRedOp op, IntPtr comm, IntPtr stream)
    {
        Log($"AllReduce {count} {type} {op}");
        if (FailCollectives != NcclResult.Success) return FailCollectives;
        var (g, r) = Of(comm);
        var all = g.Post(r, send);
        var result = new double[count];
        for (ulong i = 0; i < count; i++)
        {
            double acc = Read(type, all[0], i);
            for (int j = 1; j < all.Length; j++)
                acc = op == NcclRedOp.Max ? Math.Max(acc, Read(type, all[j], i)) : acc + Read(type, all[j], i);
            result[i] = acc;
        }
        g.Sync(); // everyone has read every input before anyone writes (the call is in place)
        for (ulong i = 0; i < count; i++) Write(type, recv, i, result[i]);
        g.Sync();
        return NcclResult.Success;
    }

    public NcclResult Broadcast(IntPtr send, IntPtr recv, ulong count, NcclDataType type, int root, IntPtr comm, IntPtr stream)
    {
        Log($"Broadcast {count} {type} root {root}");
        if (FailCollectives != NcclResult.Success) return FailCollectives;
        var (g, r) = Of(comm);
        var all = g.Post(r, send);
        if (r != root) Buffer.MemoryCopy((void*)all[root], (void*)recv, (long)count * Size(type), (long)count * Size(type));
        g.Sync();
        return NcclResult.Success;
    }

    public NcclResult AllGather(IntPtr send, IntPtr recv, ulong sendCount, NcclDataType type, IntPtr comm, IntPtr stream)
    {
        Log($"AllGather {sendCount} {type}");
        if (FailCollectives != NcclResult.Success) return FailCollectives;
        var (g, r) = Of(comm);
        var all = g.Post(r, send);
        long bytes = (long)sendCount * Size(type);
        for (int j = 0; j < all.Length; j++)
            Buffer.MemoryCopy((void*)all[j], (void*)(recv + (nint)(j * bytes)), bytes, bytes);
        g.Sync();
        return NcclResult.Success;
    }

    public NcclResult ReduceScatter(IntPtr send, IntPtr recv, ulong recvCount, NcclDataType type, NcclRedOp op, IntPtr comm, IntPtr stream)
    {
        Log($"ReduceScatter {recvCount} {type} {op}");
        if (FailCollectives != NcclResult.Success) return FailCollectives;
        var (g, r) = Of(comm);
        var all = g.Post(r, send);
        ulong start = (ulong)r * recvCount;
        for (ulong i = 0; i < recvCount; i++)
        {
            double acc = Read(type, all[0], start + i);
            for (int j = 1; j < all.Length; j++)
                acc = op == NcclRedOp.Max ? Math.Max(acc, Read(type, all[j], start + i)) : acc + Read(type, all[j], start + i);
            Write(type, recv, i, acc);
        }
        g.Sync();
        return NcclResult.Success;
    }

    public NcclResult Send(IntPtr buffer, ulong count, NcclDataType type, int peer, IntPtr comm, IntPtr stream)
    {
        Log($"Send {count} {type} to {peer}");
        if (pending is null) return NcclResult.InvalidUsage; // NCCL allows this, but zcode always groups its sends
        if (FailSend != NcclResult.Success) return FailSend;
        pending.Add((true, buffer, count * (ulong)Size(type), peer, comm));
        return NcclResult.Success;
    }

    public NcclResult Recv(IntPtr buffer, ulong count, NcclDataType type, int peer, IntPtr comm, IntPtr stream)
    {
        Log($"Recv {count} {type} from {peer}");
        if (pending is null) return NcclResult.InvalidUsage;
        pending.Add((false, buffer, count * (ulong)Size(type), peer, comm));
        return NcclResult.Success;
    }

    public NcclResult GroupStart()
    {
        Log("GroupStart");
        if (pending is not null) return NcclResult.InvalidUsage; // zcode never nests groups
        pending = new();
        return NcclResult.Success;
    }

    /// <summary>Matches every receive with the peer's send to this rank (same size) and copies the bytes. Unlike NCCL
    /// the fake synchronizes the ranks here, so every rank's group must hold at least one send or receive.</summary>
    public NcclResult GroupEnd()
    {
        Log("GroupEnd");
        if (pending is null) return NcclResult.InvalidUsage;
        var mine = pending;
        pending = null;
        if (mine.Count == 0 || FailSend != NcclResult.Success) return NcclResult.Success;
        if (mine.Any(p => p.Comm != mine[0].Comm)) return NcclResult.InvalidUsage;
        var (g, r) = Of(mine[0].Comm);
        var all = g.PostObject(r, mine.Where(p => p.Send).ToList());
        var status = NcclResult.Success;
        foreach (var recv in mine.Where(p => !p.Send))
        {
            var sends = ((List<(bool, IntPtr Buffer, ulong Bytes, int Peer, IntPtr)>)all[recv.Peer]!).Where(s => s.Peer == r).ToList();
            if (sends.Count != 1 || sends[0].Bytes != recv.Bytes) { status = NcclResult.InvalidUsage; continue; }
            Buffer.MemoryCopy((void*)sends[0].Buffer, (void*)recv.Buffer, (long)recv.Bytes, (long)recv.Bytes);
        }
        g.Sync();
        return status;
    }

    public NcclResult CommGetAsyncError(IntPtr comm, out NcclResult asyncError) { asyncError = AsyncError; return NcclResult.Success; }
    public NcclResult CommAbort(IntPtr comm) { Log("CommAbort"); Aborted++; return NcclResult.Success; }
    public NcclResult CommDestroy(IntPtr comm) { Log("CommDestroy"); Destroyed++; return NcclResult.Success; }
    public string GetErrorString(NcclResult result) => $"fake text for {result}";
    public string GetLastError(IntPtr comm) => "fake detail";
    public int CudaSetDevice(int device) { lock (Devices) Devices.Add(device); return INcclApi.CudaSuccess; }
    public int CudaStreamQuery(IntPtr stream) => StreamHangs ? INcclApi.CudaErrorNotReady : INcclApi.CudaSuccess;
    public string CudaErrorString(int error) => $"cuda error {error}";

    private static int Size(NcclDataType t) => t switch
    {
        NcclDataType.Int8 or NcclDataType.Uint8 => 1,
        NcclDataType.Float16 or NcclDataType.BFloat16 => 2,
        NcclDataType.Int32 or NcclDataType.Uint32 or NcclDataType.Float32 => 4,
        _ => 8,
    };

    private static double Read(NcclDataType t, IntPtr p, ulong i) => t switch
    {
        NcclDataType.Float32 => ((float*)p)[i],
        NcclDataType.Float64 => ((double*)p)[i],
        NcclDataType.Int32 => ((int*)p)[i],
        NcclDataType.Int64 => ((long*)p)[i],
        NcclDataType.Float16 => (double)((Half*)p)[i],
        NcclDataType.BFloat16 => BitConverter.Int32BitsToSingle(((ushort*)p)[i] << 16),
        _ => throw new NotSupportedException($"fake NCCL reduces no {t}"),
    };

    private static void Write(NcclDataType t, IntPtr p, ulong i, double v)
    {
        switch (t)
        {
            case NcclDataType.Float32: ((float*)p)[i] = (float)v; break;
            case NcclDataType.Float64: ((double*)p)[i] = v; break;
            case NcclDataType.Int32: ((int*)p)[i] = (int)v; break;
            case NcclDataType.Int64: ((long*)p)[i] = (long)v; break;
            case NcclDataType.Float16: ((Half*)p)[i] = (Half)v; break;
            case NcclDataType.BFloat16: ((ushort*)p)[i] = (ushort)(BitConverter.SingleToInt32Bits((float)v) >> 16); break; // exact for the small integers used
            default: throw new NotSupportedException($"fake NCCL reduces no {t}");
        }
    }
}

/// <summary>The process-wide state the fake ranks share: one group per unique id, created by the first rank to join.</summary>
internal sealed class FakeNcclWorld
{
    private int ids;
    private readonly ConcurrentDictionary<byte, Group> groups = new();

    public byte[] NewId()
    {
        var id = new byte[INcclApi.UniqueIdBytes];
        id[0] = (byte)Interlocked.Increment(ref ids);
        for (int i = 1; i < id.Length; i++) id[i] = (byte)(id[0] * 31 + i);
        return id;
    }

    public Group Join(byte[] id, int size) => groups.GetOrAdd(id[0], _ => new Group(size));

    /// <summary>Ranks of one fake communicator: post a value, wait for all, read everyone's.</summary>
    public sealed class Group(int size)
    {
        private readonly Barrier barrier = new(size);
        private readonly object?[] slots = new object?[size];

        public IntPtr[] Post(int rank, IntPtr value) => PostObject(rank, value).Select(o => (IntPtr)o!).ToArray();

        public object?[] PostObject(int rank, object value)
        {
            slots[rank] = value;
            Sync();
            var all = (object?[])slots.Clone();
            Sync();
            return all;
        }

        public void Sync()
        {
            if (!barrier.SignalAndWait(TimeSpan.FromSeconds(30)))
                throw new TimeoutException("fake NCCL: a rank did not arrive within 30 s");
        }
    }
}
