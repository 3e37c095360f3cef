using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>LayerNorm computed in fp32 for stability, returned in the activation dtype (bf16 or fp32).</summary>
internal static class LayerNormIn
{
    public static Tensor Apply(LayerNorm norm, Tensor x)
    {
        if (x.dtype == ScalarType.Float32)
            return norm.call(x);
        return norm.call(x.to_type(ScalarType.Float32)).to_type(x.dtype);
    }
}
