using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// The one gate for seeding torch's process-wide generator. In-process ranks (the tests' thread-per-rank groups)
/// share that generator, so a rank that reseeds it for its first step must not do so while another rank is still
/// drawing its initial weights from it: both go through <see cref="Gate"/>. With one rank per process the lock is
/// never contended.
/// </summary>
public static class GlobalGenerator
{
    /// <summary>Held while a model draws its initial weights, and while the generator is reseeded.</summary>
    public static readonly object Gate = new();

    /// <summary>Seeds torch's global generator, never in the middle of a draw made under <see cref="Gate"/>.</summary>
    public static void Seed(long seed)
    {
        lock (Gate)
            manual_seed(seed);
    }
}
