using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>Fixed sinusoidal position table (Vaswani et al.), computed once; not a parameter.</summary>
internal static class SinusoidalPositions
{
    public static Tensor Table(int maxPositions, int dModel)
    {
        var half = dModel / 2;
        var position = arange(maxPositions, dtype: ScalarType.Float32).unsqueeze(1);
        var freq = exp(arange(half, dtype: ScalarType.Float32) * (-Math.Log(10000.0) / Math.Max(1, half - 1)));
        var angles = position * freq.unsqueeze(0);
        var table = cat([sin(angles), cos(angles)], 1);
        if (dModel % 2 == 1)
            table = cat([table, zeros(maxPositions, 1)], 1);
        return table;
    }
}
