namespace ZCode.Parallel;

/// <summary>
/// Where this process sits in a multi-process launch, read from the launcher's environment variables:
/// Open MPI's mpirun, PMI (MPICH/Hydra, srun --mpi=pmi2), Slurm's srun, or a torchrun-style launcher.
/// A process started on its own is rank 0 of 1 with launcher "none".
/// </summary>
public sealed record LaunchEnvironment(string Launcher, int Rank, int WorldSize, int LocalRank, int LocalSize)
{
    public const string None = "none", OpenMpi = "openmpi", Pmi = "pmi", Slurm = "slurm", Torchrun = "torchrun";

    /// <summary>True when the launcher is one that starts MPI processes (the mpi and nccl backends bootstrap over MPI).</summary>
    public bool IsMpiLauncher => Launcher is OpenMpi or Pmi or Slurm;

    /// <summary>The current process's environment.</summary>
    public static LaunchEnvironment Current()
    {
        var vars = new Dictionary<string, string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
            vars[(string)e.Key] = e.Value as string ?? "";
        return From(vars);
    }

    /// <summary>Parses <paramref name="env"/>; the first launcher whose variables are present wins (Open MPI, PMI,
    /// Slurm, torchrun), since mpirun inside a Slurm allocation also inherits Slurm's variables.
    /// Throws <see cref="UserInputException"/> when a launcher's variables are malformed or inconsistent.</summary>
    public static LaunchEnvironment From(IReadOnlyDictionary<string, string> env)
    {
        if (env.ContainsKey("OMPI_COMM_WORLD_RANK"))
            return Make(env, OpenMpi, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE");
        if (env.ContainsKey("PMI_RANK"))
            return Make(env, Pmi, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS");
        // SLURM_PROCID is also set (to 0) in an sbatch script itself; only a job step started by srun has a step id.
        if (env.ContainsKey("SLURM_PROCID") && (env.ContainsKey("SLURM_STEP_ID") || env.ContainsKey("SLURM_STEPID")))
            return FromSlurm(env);
        if (env.ContainsKey("RANK") && env.ContainsKey("WORLD_SIZE"))
            return Make(env, Torchrun, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE");
        return new LaunchEnvironment(None, 0, 1, 0, 1);
    }

    private static LaunchEnvironment Make(IReadOnlyDictionary<string, string> env, string launcher,
        string rankKey, string sizeKey, string localRankKey, string localSizeKey)
    {
        int rank = Read(env, rankKey, 0);
        int size = Read(env, sizeKey, null);
        return Checked(launcher, rank, size, Read(env, localRankKey, rank), Read(env, localSizeKey, size), rankKey, sizeKey);
    }

    private static LaunchEnvironment FromSlurm(IReadOnlyDictionary<string, string> env)
    {
        int rank = Read(env, "SLURM_PROCID", 0);
        string sizeKey = env.ContainsKey("SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
        int size = Read(env, sizeKey, 1);
        int localRank = Read(env, "SLURM_LOCALID", rank);
        int localSize = size;
        string perNodeKey = env.ContainsKey("SLURM_STEP_TASKS_PER_NODE") ? "SLURM_STEP_TASKS_PER_NODE" : "SLURM_TASKS_PER_NODE";
        if (env.TryGetValue(perNodeKey, out var perNode))
        {
            var counts = TasksPerNode(perNode, perNodeKey);
            int node = Read(env, "SLURM_NODEID", 0);
            if (node >= counts.Count)
                throw new UserInputException($"launcher environment: SLURM_NODEID={node} but {perNodeKey}={perNode} lists {counts.Count} nodes");
            localSize = counts[node];
        }
        return Checked(Slurm, rank, size, localRank, localSize, "SLURM_PROCID", sizeKey);
    }

    /// <summary>Expands Slurm's compressed task counts, e.g. "4(x2),3" = [4, 4, 3].</summary>
    public static List<int> TasksPerNode(string value, string key)
    {
        var counts = new List<int>();
        foreach (var part in value.Split(',', StringSplitOptions.TrimEntries))
        {
            var m = System.Text.RegularExpressions.Regex.Match(part, @"^(\d+)(?:\(x(\d+)\))?$");
            if (!m.Success)
                throw new UserInputException($"launcher environment: {key}={value} is not a Slurm task list like 4(x2),3");
            int n = int.Parse(m.Groups[1].Value), repeat = m.Groups[2].Success ? int.Parse(m.Groups[2].Value) : 1;
            counts.AddRange(Enumerable.Repeat(n, repeat));
        }
        return counts;
    }

    private static int Read(IReadOnlyDictionary<string, string> env, string key, int? fallback)
    {
        if (!env.TryGetValue(key, out var text))
            return fallback ?? throw new UserInputException($"launcher environment: {key} is not set but the launcher's rank variable is");
        if (!int.TryParse(text.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v))
            throw new UserInputException($"launcher environment: {key}={text} is not a non-negative integer");
        return v;
    }

    private static LaunchEnvironment Checked(string launcher, int rank, int size, int localRank, int localSize, string rankKey, string sizeKey)
    {
        if (size < 1 || rank >= size)
            throw new UserInputException($"launcher environment ({launcher}): {rankKey}={rank} must be less than {sizeKey}={size}");
        if (localSize < 1 || localRank >= localSize || localSize > size)
            throw new UserInputException($"launcher environment ({launcher}): local rank {localRank} of local size {localSize} is inconsistent with world size {size}");
        return new LaunchEnvironment(launcher, rank, size, localRank, localSize);
    }
}
