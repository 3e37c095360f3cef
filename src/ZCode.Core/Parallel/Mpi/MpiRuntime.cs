using System.Runtime.InteropServices;

namespace ZCode.Parallel.Mpi;

/// <summary>
/// The process's MPI session: MPI_Init_thread on first use (asking for MPI_THREAD_MULTIPLE because autograd's
/// backward may run collectives on its own thread), MPI_Finalize at a normal process exit, MPI_Abort for fatal
/// errors. When the library grants less than MULTIPLE every MPI call is serialized through <see cref="Gate"/>.
/// </summary>
internal static unsafe class MpiRuntime
{
    private static readonly object InitGate = new();
    private static MpiNative? api;
    private static volatile bool terminating;
    private static PosixSignalRegistration? sigterm;

    /// <summary>Held around each MPI call when the thread level is below MULTIPLE; null otherwise.</summary>
    public static object? Gate { get; private set; }

    public static int WorldRank { get; private set; }
    public static int WorldSize { get; private set; } = 1;

    /// <summary>True once this process has initialized MPI (and not yet finalized it).</summary>
    public static bool IsInitialized => api is not null;

    /// <summary>Initializes MPI once per process and returns the binding.</summary>
    public static MpiNative Start()
    {
        lock (InitGate)
        {
            if (api is not null) return api;
            var mpi = MpiNative.Load();
            int already = 0, provided = 0, rank = 0, size = 0;
            Check(mpi, mpi.Initialized(&already), "MPI_Initialized");
            if (already == 0)
                Check(mpi, mpi.Init_thread(null, IntPtr.Zero, MpiNative.ThreadMultiple, &provided), "MPI_Init_thread");
            else
                provided = MpiNative.ThreadSerialized; // someone else initialized it: assume the weaker level and serialize
            if (provided < MpiNative.ThreadSerialized)
                Console.Error.WriteLine($"zcode: warning: MPI granted thread level {provided} (< SERIALIZED); serializing MPI calls");
            Check(mpi, mpi.Comm_rank(mpi.CommWorld, &rank), "MPI_Comm_rank");
            Check(mpi, mpi.Comm_size(mpi.CommWorld, &size), "MPI_Comm_size");
            WorldRank = rank;
            WorldSize = size;
            Gate = provided >= MpiNative.ThreadMultiple ? null : new object();
            // A launcher that tears the job down sends SIGTERM: finalizing then would wait for dead peers.
            sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => terminating = true);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => FinalizeAtExit();
            api = mpi;
            return mpi;
        }
    }

    private static void FinalizeAtExit()
    {
        var mpi = api;
        if (mpi is null || terminating) return;
        int finalized = 0;
        if (mpi.Finalized(&finalized) == MpiNative.Success && finalized == 0)
            mpi.Finalize();
    }

    /// <summary>Prints "zcode: rank R: message" and aborts the whole MPI job with <paramref name="exitCode"/>;
    /// returns only when MPI is not running.</summary>
    public static void AbortJob(string message, int exitCode)
    {
        var mpi = api;
        if (mpi is null) return;
        Console.Out.Flush();
        Console.Error.WriteLine($"zcode: rank {WorldRank}: {message}");
        Console.Error.Flush();
        terminating = true;
        mpi.Abort(mpi.CommWorld, exitCode);
        Environment.Exit(exitCode); // MPI_Abort does not return in Open MPI; stay safe if it does
    }

    public static void Check(MpiNative mpi, int code, string call)
    {
        if (code != MpiNative.Success)
            throw new CommunicatorException($"{call} failed on rank {WorldRank}: {mpi.ErrorString(code)}");
    }
}
