using System.Text.Json.Nodes;
using ZCode.Checkpoints;
using static TorchSharp.torch;

namespace ZCode.Training.Optimization;

/// <summary>
/// What the trainer needs from an optimizer: it owns its state (however it is laid out over the ranks), reduces the
/// accumulated gradients, clips them by the global norm and updates the parameters, and saves and restores that state
/// as named tensor files, so neither the trainer nor the checkpoint code knows how the state is partitioned.
/// </summary>
public interface ITrainingOptimizer : IDisposable
{
    /// <summary>ZeRO stage of the state layout (0: every rank holds all of it).</summary>
    int ZeroStage { get; }

    /// <summary>Bytes of optimizer state held by this rank.</summary>
    long StateBytes { get; }

    /// <summary>Clears the gradients before the micro-batches of a step accumulate into them.</summary>
    void ZeroGrad();

    /// <summary>Reduces the accumulated gradients over the ranks, clips them to <paramref name="clipNorm"/> (0 = off) by
    /// the global norm and applies one update at <paramref name="lr"/>. Returns the global gradient norm before
    /// clipping as an fp32 scalar on the parameters' device (in the caller's dispose scope), so a step reads nothing
    /// back from the device. Afterwards the gradients hold no defined value (the CPU update clips on the fly, leaving
    /// them unclipped); the next step's <see cref="ZeroGrad"/> clears them.</summary>
    Tensor Step(double lr, double clipNorm);

    /// <summary>The files of this rank's state in a checkpoint, as named tensors (views of the live state, valid until
    /// the caller's dispose scope ends). <paramref name="writesShared"/> and <paramref name="writesExperts"/> say which
    /// parts of the model this rank writes (<see cref="CheckpointGroup"/>); state that is sharded over every rank is
    /// written by every rank.</summary>
    IReadOnlyList<TensorFile> StateFiles(bool writesShared, bool writesExperts);

    /// <summary>Adds what a reader of the saved state needs to the checkpoint manifest (kind, layout maps).</summary>
    void Describe(JsonObject manifest);

    /// <summary>Restores the state saved in checkpoint <paramref name="dir"/> (whose verified manifest is
    /// <paramref name="manifest"/>) by any world size, expert-parallel size and ZeRO stage. Call it after the model's
    /// weights are loaded: a sharded optimizer takes its master weights from them.</summary>
    void Load(string dir, JsonObject manifest);
}
