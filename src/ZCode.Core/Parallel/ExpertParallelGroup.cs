namespace ZCode.Parallel;

/// <summary>
/// The expert-parallel group an MoE model is built for (docs/ARCHITECTURE.md §3): its ranks split every MoE layer's E experts
/// into Size contiguous blocks of E/Size, rank r holding global experts [r*E/Size, (r+1)*E/Size) (as DeepSpeed).
/// The communicator carries the layers' all-to-alls; the model never disposes it. <see cref="ParallelLayout"/> builds
/// the groups of a run (<see cref="ParallelLayout.ModelExpertGroup"/>).
/// </summary>
public sealed class ExpertParallelGroup
{
    public ExpertParallelGroup(ICommunicator comm)
    {
        ArgumentNullException.ThrowIfNull(comm);
        Comm = comm;
    }

    /// <summary>Communicator over the expert-parallel ranks (rank order = expert block order).</summary>
    public ICommunicator Comm { get; }

    /// <summary>This rank's index in the group: the block of experts it holds.</summary>
    public int Rank => Comm.Rank;

    /// <summary>Expert-parallel size P.</summary>
    public int Size => Comm.Size;

    /// <summary>Experts per rank (E/P); throws unless P divides E.</summary>
    public int LocalExperts(int experts)
    {
        if (experts % Size != 0)
            throw new ArgumentException($"expert-parallel size {Size} must divide the number of experts {experts}", nameof(experts));
        return experts / Size;
    }

    /// <summary>Global id of this rank's first expert.</summary>
    public int FirstExpert(int experts) => Rank * LocalExperts(experts);
}
