using ZCode.Model;

namespace ZCode.Training;

/// <summary>
/// Reseeds every random stream a training step uses (torch's global generator for dropout, each MoE layer's
/// generator for RTS/jitter) from (train.seed, step) at the start of the step. A step's randomness then depends
/// on nothing but its number, so a resumed run needs no saved generator state and reproduces the uninterrupted
/// run bit for bit. (TorchSharp exposes no get/set of the CPU generator state; this also survives changes to how
/// many numbers earlier steps drew.) Each micro-batch of the step is reseeded again from its GLOBAL index in the
/// step (<see cref="ApplyMicro"/>), so a data-parallel rank that runs micro-batch m draws exactly the dropout and
/// routing noise a single process running all of the step's micro-batches draws for m.
/// </summary>
public static class StepSeeding
{
    public static long SeedFor(long seed, long step)
    {
        // SplitMix64 finaliser: nearby (seed, step) pairs give unrelated streams.
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)step * 0xBF58476D1CE4E5B9UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (long)((z ^ (z >> 31)) >> 1);
    }

    public static void Apply(Seq2SeqTransformer model, long seed, long step) => ApplyMicro(model, seed, step, 0);

    /// <summary>Seeds micro-batch <paramref name="micro"/> (0-based global index within the step); micro-batch 0
    /// gets the step's own seed, so runs without accumulation draw what they always drew.</summary>
    public static void ApplyMicro(Seq2SeqTransformer model, long seed, long step, int micro)
    {
        var s = SeedFor(seed, step);
        if (micro > 0)
            s = SeedFor(s, micro);
        GlobalGenerator.Seed(s);
        MoeSeeding.Apply(model, s);
    }
}
