using ZCode.Config;
using ZCode.Parallel.Mpi;

namespace ZCode.Parallel;

/// <summary>
/// Builds the world communicator for <c>parallel.backend</c> (docs/ARCHITECTURE.md §3):
/// <list type="bullet">
/// <item><c>auto</c>: nccl when training on CUDA under a multi-process MPI launch, local for one CUDA process (NCCL
/// would only add a dependency), mpi for CPU training started by an MPI launcher (mpirun, srun, PMI), else local.</item>
/// <item><c>mpi</c> without a launcher: Open MPI's singleton init, a world of 1.</item>
/// <item><c>nccl</c>: bootstraps over MPI (world of 1 without a launcher) and uses GPU <c>local rank</c>.</item>
/// </list>
/// </summary>
public static class Communicators
{
    /// <summary>The backend <paramref name="backend"/> resolves to. A launch it cannot serve (see <see cref="Problem"/>) is a
    /// programming error here: the config validator and the bench commands reject it first.</summary>
    public static string Resolve(string backend, bool cudaDevice, LaunchEnvironment launch)
    {
        if (Problem(backend, cudaDevice, launch) is { } problem)
            throw new InvalidOperationException($"backend {backend}: {problem}");
        return Pick(backend, cudaDevice, launch);
    }

    /// <summary>
    /// Why <paramref name="backend"/> cannot connect the ranks of <paramref name="launch"/> when training runs on CUDA
    /// (<paramref name="cudaDevice"/>) or not, as the text after "parallel.backend: "; null when it can.
    /// </summary>
    public static string? Problem(string backend, bool cudaDevice, LaunchEnvironment launch)
    {
        if (launch.Launcher == LaunchEnvironment.Torchrun && launch.WorldSize > 1 && backend != "local")
            return $"RANK/WORLD_SIZE come from a torchrun-style launcher ({launch.WorldSize} ranks), but zcode's " +
                   "mpi and nccl backends bootstrap over MPI: start the ranks with mpirun or srun instead";
        return Pick(backend, cudaDevice, launch) switch
        {
            "local" when launch.WorldSize > 1 =>
                $"local runs one process, but the launcher ({launch.Launcher}) started {launch.WorldSize}; use auto, mpi or nccl",
            "nccl" when !cudaDevice =>
                "nccl reduces CUDA tensors, but training runs on the CPU (train.device); use auto or mpi for CPU training, " +
                "or train.device: cuda on a machine with GPUs",
            "mpi" when cudaDevice && launch.WorldSize > 1 =>
                "mpi reduces CPU tensors only, but training runs on CUDA (train.device); use auto or nccl for GPU training, " +
                "or train.device: cpu",
            _ => null,
        };
    }

    private static string Pick(string backend, bool cudaDevice, LaunchEnvironment launch) => backend switch
    {
        "auto" when cudaDevice && launch.IsMpiLauncher && launch.WorldSize > 1 => "nccl",
        "auto" when cudaDevice => "local", // one CUDA process: the mpi backend moves CPU tensors only
        "auto" when launch.IsMpiLauncher => "mpi",
        "auto" => "local",
        "local" or "mpi" or "nccl" => backend,
        _ => throw new ArgumentException($"parallel.backend: expected one of auto, local, mpi, nccl, got '{backend}'", nameof(backend)),
    };

    /// <summary>The world communicator for <paramref name="config"/>'s parallel section; <paramref name="cudaDevice"/>
    /// says whether training runs on CUDA (train.device), <paramref name="gpu"/> which GPU this rank trains on (nccl
    /// must use the same one; default: the local rank).</summary>
    public static ICommunicator Create(ParallelConfig config, bool cudaDevice, int? gpu = null)
        => Create(config.Backend, TimeSpan.FromSeconds(config.TimeoutS), cudaDevice, LaunchEnvironment.Current(), gpu);

    /// <param name="gpu">The rank's GPU for nccl (an explicit train.device cuda:N, e.g. with CUDA_VISIBLE_DEVICES set
    /// per rank); null uses the local rank.</param>
    public static ICommunicator Create(string backend, TimeSpan timeout, bool cudaDevice, LaunchEnvironment launch, int? gpu = null)
    {
        switch (Resolve(backend, cudaDevice, launch))
        {
            case "local":
                return new LocalCommunicator();
            case "mpi":
                return MpiCommunicator.World(timeout);
            default:
                var world = MpiCommunicator.World(timeout);
                try
                {
                    return NcclCommunicator.Create(world, gpu ?? launch.LocalRank, timeout);
                }
                catch
                {
                    world.Dispose();
                    throw;
                }
        }
    }

    /// <summary>
    /// Reports a fatal error of this rank so the whole job ends now instead of peers waiting out their timeouts:
    /// in a multi-process MPI job it prints "zcode: rank R: message" and calls MPI_Abort (does not return);
    /// otherwise it returns false and the caller reports the error as usual.
    /// </summary>
    public static bool AbortJob(string message, int exitCode = 1)
    {
        if (!MpiRuntime.IsInitialized || MpiRuntime.WorldSize <= 1) return false;
        MpiRuntime.AbortJob(message, exitCode);
        return true;
    }
}
