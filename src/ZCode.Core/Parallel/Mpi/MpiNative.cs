using System.Runtime.InteropServices;

namespace ZCode.Parallel.Mpi;

/// <summary>
/// Open MPI's C API (libmpi.so.40, ABI of Open MPI 3.x-5.x) bound lazily through function pointers, so zcode builds
/// and runs without MPI and loads it only when the mpi backend is used. Handles (communicators, datatypes, ops,
/// requests) are pointers in Open MPI; the predefined ones are the addresses of exported globals.
/// </summary>
internal sealed unsafe class MpiNative
{
    public const int ThreadSingle = 0, ThreadFunneled = 1, ThreadSerialized = 2, ThreadMultiple = 3;
    public const int Success = 0;
    public static readonly IntPtr InPlace = 1; // MPI_IN_PLACE is ((void *) 1) in Open MPI

    private static readonly string[] Candidates = ["libmpi.so.40", "libmpi.so"];
    private static MpiNative? loaded;
    private static readonly object LoadGate = new();

    public IntPtr CommWorld, Byte, Float, Double, Int32, Int64, OpSum, OpMax;

    public delegate* unmanaged<int*, IntPtr, int, int*, int> Init_thread;
    public delegate* unmanaged<int*, int> Initialized;
    public delegate* unmanaged<int*, int> Finalized;
    public delegate* unmanaged<int> Finalize;
    public delegate* unmanaged<IntPtr, int, int> Abort;
    public delegate* unmanaged<IntPtr, int*, int> Comm_rank;
    public delegate* unmanaged<IntPtr, int*, int> Comm_size;
    public delegate* unmanaged<IntPtr, int, int, IntPtr*, int> Comm_split;
    public delegate* unmanaged<IntPtr*, int> Comm_free;
    public delegate* unmanaged<int, byte*, int*, int> Error_string;
    public delegate* unmanaged<IntPtr*, int*, IntPtr, int> Test;
    public delegate* unmanaged<int, IntPtr, IntPtr*, int> Type_contiguous;
    public delegate* unmanaged<IntPtr*, int> Type_commit;
    public delegate* unmanaged<IntPtr*, int> Type_free;
    public delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int> Iallreduce;
    public delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, IntPtr*, int> Ibcast;
    public delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr*, int> Iallgather;
    public delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int> Ireduce_scatter_block;
    public delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr*, int> Ialltoall;
    public delegate* unmanaged<IntPtr, int*, int*, IntPtr, IntPtr, int*, int*, IntPtr, IntPtr, IntPtr*, int> Ialltoallv;
    public delegate* unmanaged<IntPtr, IntPtr*, int> Ibarrier;

    /// <summary>The process-wide binding; throws <see cref="CommunicatorException"/> with the install hint when missing.</summary>
    public static MpiNative Load()
    {
        lock (LoadGate)
            return loaded ??= Bind();
    }

    private static MpiNative Bind()
    {
        IntPtr lib = IntPtr.Zero;
        foreach (var name in Candidates)
            if (NativeLibrary.TryLoad(name, out lib))
                break;
        if (lib == IntPtr.Zero)
            throw new CommunicatorException(
                "backend mpi: cannot load Open MPI's libmpi.so.40; install openmpi-bin libopenmpi-dev (scripts/setup)");
        try
        {
            return new MpiNative(lib);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new CommunicatorException($"backend mpi: the loaded libmpi is not Open MPI 3.x-5.x ({e.Message}); " +
                                            "install openmpi-bin libopenmpi-dev (scripts/setup)", e);
        }
    }

    private MpiNative(IntPtr lib)
    {
        IntPtr F(string name) => NativeLibrary.GetExport(lib, name);
        CommWorld = F("ompi_mpi_comm_world");
        Byte = F("ompi_mpi_byte");
        Float = F("ompi_mpi_float");
        Double = F("ompi_mpi_double");
        Int32 = F("ompi_mpi_int32_t");
        Int64 = F("ompi_mpi_int64_t");
        OpSum = F("ompi_mpi_op_sum");
        OpMax = F("ompi_mpi_op_max");
        Init_thread = (delegate* unmanaged<int*, IntPtr, int, int*, int>)F("MPI_Init_thread");
        Initialized = (delegate* unmanaged<int*, int>)F("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)F("MPI_Finalized");
        Finalize = (delegate* unmanaged<int>)F("MPI_Finalize");
        Abort = (delegate* unmanaged<IntPtr, int, int>)F("MPI_Abort");
        Comm_rank = (delegate* unmanaged<IntPtr, int*, int>)F("MPI_Comm_rank");
        Comm_size = (delegate* unmanaged<IntPtr, int*, int>)F("MPI_Comm_size");
        Comm_split = (delegate* unmanaged<IntPtr, int, int, IntPtr*, int>)F("MPI_Comm_split");
        Comm_free = (delegate* unmanaged<IntPtr*, int>)F("MPI_Comm_free");
        Error_string = (delegate* unmanaged<int, byte*, int*, int>)F("MPI_Error_string");
        Test = (delegate* unmanaged<IntPtr*, int*, IntPtr, int>)F("MPI_Test");
        Type_contiguous = (delegate* unmanaged<int, IntPtr, IntPtr*, int>)F("MPI_Type_contiguous");
        Type_commit = (delegate* unmanaged<IntPtr*, int>)F("MPI_Type_commit");
        Type_free = (delegate* unmanaged<IntPtr*, int>)F("MPI_Type_free");
        Iallreduce = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int>)F("MPI_Iallreduce");
        Ibcast = (delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, IntPtr*, int>)F("MPI_Ibcast");
        Iallgather = (delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr*, int>)F("MPI_Iallgather");
        Ireduce_scatter_block = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int>)F("MPI_Ireduce_scatter_block");
        Ialltoall = (delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr*, int>)F("MPI_Ialltoall");
        Ialltoallv = (delegate* unmanaged<IntPtr, int*, int*, IntPtr, IntPtr, int*, int*, IntPtr, IntPtr, IntPtr*, int>)F("MPI_Ialltoallv");
        Ibarrier = (delegate* unmanaged<IntPtr, IntPtr*, int>)F("MPI_Ibarrier");
    }

    /// <summary>MPI_Error_string of <paramref name="code"/>.</summary>
    public string ErrorString(int code)
    {
        var buffer = stackalloc byte[512]; // MPI_MAX_ERROR_STRING is 256 in Open MPI
        int length = 0;
        return Error_string(code, buffer, &length) == Success
            ? System.Text.Encoding.UTF8.GetString(buffer, Math.Clamp(length, 0, 511))
            : $"MPI error {code}";
    }
}
