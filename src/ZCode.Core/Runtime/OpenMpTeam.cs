using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace ZCode.Runtime;

/// <summary>
/// Runs a .NET loop on LibTorch's own OpenMP threads (GOMP_parallel of the libgomp LibTorch links), for CPU passes
/// written in C# between LibTorch ops, such as the fused AdamW.
/// <para>Why not Parallel.For: after each parallel LibTorch op its OpenMP workers spin for a while before they sleep,
/// so on a machine with as many cores as threads a .NET worker started then shares a core with a spinning thread, and
/// a memory-bound pass ran several times slower on two cores than on one. On the OpenMP team the same threads that
/// were spinning do the work. Where no GNU OpenMP runtime is found (Windows' and macOS' LibTorch), or inside a parallel
/// region, the parts run one after another on the calling thread: the results are the same either way.</para>
/// <para>A part may call LibTorch: inside the region its ops run serially on that thread (at::parallel_for sees the
/// region; MKL does not nest). A part on a worker thread does not see the caller's thread-local state: not its
/// TorchSharp dispose scope (dispose what it creates) and not its grad mode (use tensors that need no gradient).</para>
/// </summary>
internal static unsafe class OpenMpTeam
{
    /// <summary>Whether parts run on OpenMP threads (else on the calling thread). Resolved on first use, once LibTorch
    /// is loaded.</summary>
    public static bool Available => Gomp.Parallel != null;

    /// <summary>Parts for <paramref name="work"/> items at one part per <paramref name="grain"/> of them (rounded up):
    /// at least one, at most one per LibTorch intra-op thread.</summary>
    public static int Parts(long work, long grain)
        => (int)Math.Max(1, Math.Min(TorchSharp.torch.get_num_threads(), (work + grain - 1) / grain));

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> of the items [0, <paramref name="n"/>): inner
    /// ends at multiples of <paramref name="align"/>, the last part ending at n.</summary>
    public static (long From, long To) Share(long n, int part, int parts, long align = 1)
    {
        long Edge(int k) => k == parts ? n : n / parts * k / align * align;
        return (Edge(part), Edge(part + 1));
    }

    /// <summary>
    /// Calls <paramref name="body"/>(part) for every part in [0, <paramref name="parts"/>), on up to that many threads
    /// of the team (the caller is one of them), and returns when all are done. Parts must be independent. An exception
    /// of any part is rethrown here after the others finished.
    /// </summary>
    public static void Run(int parts, Action<int> body)
    {
        if (parts <= 1 || Gomp.Parallel == null)
        {
            for (int p = 0; p < parts; p++) body(p);
            return;
        }
        var job = new Job(body, parts);
        var handle = GCHandle.Alloc(job);
        try { Gomp.Parallel(&Enter, GCHandle.ToIntPtr(handle), (uint)parts, 0); }
        finally { handle.Free(); }
        if (job.Error is not null) ExceptionDispatchInfo.Throw(job.Error);
    }

    [UnmanagedCallersOnly]
    private static void Enter(IntPtr data)
    {
        var job = (Job)GCHandle.FromIntPtr(data).Target!;
        try
        {
            // The team can be smaller than asked for (nested region, OMP_DYNAMIC): each thread takes every team-th part.
            int team = Math.Max(1, Gomp.NumThreads()), me = Gomp.ThreadNum();
            for (int p = me; p < job.Parts; p += team) job.Body(p);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref job.Error, e, null);
        }
    }

    private sealed class Job(Action<int> body, int parts)
    {
        public readonly Action<int> Body = body;
        public readonly int Parts = parts;
        public Exception? Error;
    }

    /// <summary>The libgomp entry points, looked up when first needed: by then TorchSharp has loaded libtorch_cpu
    /// (every caller works on tensors), which a lookup at process start could not assume.</summary>
    private static class Gomp
    {
        public static readonly delegate* unmanaged<delegate* unmanaged<IntPtr, void>, IntPtr, uint, uint, void> Parallel;
        public static readonly delegate* unmanaged<int> ThreadNum;
        public static readonly delegate* unmanaged<int> NumThreads;

        static Gomp()
        {
            // dlsym on libtorch_cpu's handle searches its dependencies too, so this finds the OpenMP runtime LibTorch
            // itself uses, whatever its hashed file name; the bare name resolves to the loaded library by its soname.
            if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libtorch_cpu.so", out var torch)) return;
            if (NativeLibrary.TryGetExport(torch, "GOMP_parallel", out var parallel)
                && NativeLibrary.TryGetExport(torch, "omp_get_thread_num", out var threadNum)
                && NativeLibrary.TryGetExport(torch, "omp_get_num_threads", out var numThreads))
            {
                Parallel = (delegate* unmanaged<delegate* unmanaged<IntPtr, void>, IntPtr, uint, uint, void>)parallel;
                ThreadNum = (delegate* unmanaged<int>)threadNum;
                NumThreads = (delegate* unmanaged<int>)numThreads;
            }
        }
    }
}
