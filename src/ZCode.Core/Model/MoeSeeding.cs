namespace ZCode.Model;

/// <summary>Gives every MoE layer its own random stream derived from the run seed, so RTS and jitter reproduce.</summary>
public static class MoeSeeding
{
    public static void Apply(Seq2SeqTransformer model, long seed)
    {
        var layers = model.MoeLayers;
        for (int i = 0; i < layers.Count; i++)
            layers[i].Seed = unchecked(seed * 1_000_003 + i + 1);
    }
}
