using ZCode.Config;

namespace ZCode.Model;

/// <summary>Which FFN layers are MoE layers: every n-th layer (1-based n, 2n, ...), as in the paper (n = 2).</summary>
public static class MoeLayout
{
    public static bool IsMoeLayer(MoeConfig moe, int layerIndex)
        => moe.Experts > 0 && moe.EveryNLayers > 0 && (layerIndex + 1) % moe.EveryNLayers == 0;

    public static int CountMoeLayers(MoeConfig moe, int layers)
        => Enumerable.Range(0, layers).Count(i => IsMoeLayer(moe, i));
}
