using ZCode.Parallel;

namespace ZCode.Config;

/// <summary>What a run is validated against: the launch that started this process and the CUDA devices here.</summary>
public sealed record RunEnvironment(LaunchEnvironment Launch, bool CudaAvailable, int CudaDevices)
{
    /// <summary>This process: the launcher's environment variables and the devices LibTorch reports.</summary>
    public static RunEnvironment Current()
    {
        var cuda = TorchSharp.torch.cuda.is_available();
        return new RunEnvironment(LaunchEnvironment.Current(), cuda, cuda ? TorchSharp.torch.cuda.device_count() : 0);
    }

    /// <summary>This machine as if <paramref name="ranks"/> processes were started on it by an MPI launcher
    /// (<c>mpirun -np N</c>); 1 is a process started on its own.</summary>
    public RunEnvironment WithRanks(int ranks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ranks, 1);
        return this with
        {
            Launch = ranks == 1
                ? new LaunchEnvironment(LaunchEnvironment.None, 0, 1, 0, 1)
                : new LaunchEnvironment(LaunchEnvironment.OpenMpi, 0, ranks, 0, ranks),
        };
    }
}
