using ZCode.Parallel;

namespace ZCode.Checkpoints;

/// <summary>
/// How the ranks of a parallel run write one checkpoint directory together (a shared file system): every rank of
/// <see cref="Comm"/> calls <see cref="CheckpointStore.Save"/> (or WriteDirectory) with its own model, rank 0 of
/// <see cref="Comm"/> (the lead) prepares the temporary directory, writes the manifest with every rank's file
/// checksums and renames it into place. Ranks write only what they own:
/// <see cref="WritesShared"/> the non-expert weights, <see cref="WritesExperts"/> the block of
/// experts their model holds, each as its own file named by global expert ids (<see cref="CheckpointFormat.ExpertFile(int, int, int, int)"/>),
/// plus the extra files each passes (its optimizer state). The lead checks before anything is written that the
/// planned files do not collide and cover every expert of every MoE layer exactly once.
/// </summary>
/// <param name="Comm">The ranks that write (usually the world); collective.</param>
/// <param name="WritesShared">This rank writes shared.safetensors.</param>
/// <param name="WritesExperts">This rank writes its model's experts.</param>
public sealed record CheckpointGroup(ICommunicator Comm, bool WritesShared, bool WritesExperts)
{
    /// <summary>Rank 0 of <see cref="Comm"/>: writes the manifest, renames, updates `latest` and prunes.</summary>
    public bool IsLead => Comm.Rank == 0;

    /// <summary>
    /// The usual layout (world = data-parallel x expert-parallel, expert groups of consecutive ranks):
    /// world rank 0 writes the shared weights, the ranks of the first expert group (world ranks 0..P-1, one per
    /// expert block) write the experts; replicas in other expert groups write nothing.
    /// </summary>
    public static CheckpointGroup For(ICommunicator world, ExpertParallelGroup? expertGroup)
    {
        ArgumentNullException.ThrowIfNull(world);
        int p = expertGroup?.Size ?? 1;
        if (expertGroup is not null && world.Rank < p && expertGroup.Rank != world.Rank)
            throw new ArgumentException($"world rank {world.Rank} is expert-parallel rank {expertGroup.Rank}; expert groups must be " +
                                        "consecutive world ranks (ExpertParallelGroup.Split)", nameof(expertGroup));
        return new CheckpointGroup(world, world.Rank == 0, world.Rank < p);
    }
}
