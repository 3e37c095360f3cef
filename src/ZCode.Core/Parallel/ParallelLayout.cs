namespace ZCode.Parallel;

/// <summary>
/// The process groups of a run (docs/ARCHITECTURE.md §3): the world is data-parallel x expert-parallel. Expert groups are
/// blocks of consecutive ranks, as in DeepSpeed (world 4, expert_parallel 2: {0,1} and {2,3}); a layer's experts are
/// split over an expert group. The expert-data-parallel groups join the ranks holding the same experts
/// ({0,2} and {1,3}): expert gradients and expert optimizer shards are reduced and partitioned over them, while
/// non-expert parameters are reduced and partitioned over the whole world.
/// </summary>
public sealed class ParallelLayout : IDisposable
{
    private ParallelLayout(ICommunicator world, ICommunicator expert, ICommunicator expertData, bool ownsWorld)
    {
        World = world;
        ExpertGroup = expert;
        ExpertDataGroup = expertData;
        this.ownsWorld = ownsWorld;
    }

    private readonly bool ownsWorld;

    /// <summary>Every rank; also the data-parallel group of non-expert parameters.</summary>
    public ICommunicator World { get; }

    /// <summary>Size of an expert group (parallel.expert_parallel).</summary>
    public int ExpertParallel => ExpertGroup.Size;

    /// <summary>The ranks that split one layer's experts between them (all-to-all group).</summary>
    public ICommunicator ExpertGroup { get; }

    /// <summary>The ranks that hold the same experts (reduction and ZeRO group of expert parameters).</summary>
    public ICommunicator ExpertDataGroup { get; }

    public int Rank => World.Rank;
    public int WorldSize => World.Size;

    /// <summary>Ranks that each train on their own share of the global batch: every rank.</summary>
    public int DataParallel => World.Size;

    /// <summary>The expert group as the model takes it (null when every rank holds every expert).</summary>
    public ExpertParallelGroup? ModelExpertGroup => ExpertParallel > 1 ? new ExpertParallelGroup(ExpertGroup) : null;

    /// <summary>Builds the groups with <see cref="ICommunicator.Split"/> (a collective: every rank calls it).</summary>
    public static ParallelLayout Create(ICommunicator world, int expertParallel, bool ownsWorld = false)
    {
        ArgumentNullException.ThrowIfNull(world);
        if (expertParallel < 1 || world.Size % expertParallel != 0)
            throw new ArgumentException($"expert_parallel {expertParallel} does not divide the world size {world.Size}", nameof(expertParallel));
        int rank = world.Rank;
        var expert = world.Split(rank / expertParallel, rank);
        var expertData = world.Split(rank % expertParallel, rank);
        return new ParallelLayout(world, expert, expertData, ownsWorld);
    }

    /// <summary>One process: every group is this process alone.</summary>
    public static ParallelLayout Single() => Create(new LocalCommunicator(), 1, ownsWorld: true);

    public void Dispose()
    {
        ExpertGroup.Dispose();
        ExpertDataGroup.Dispose();
        if (ownsWorld) World.Dispose();
    }
}
