using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>
/// LayerNorm computed in fp32 for stability and returned in the compute dtype: the input of every sublayer. The
/// residual stream itself stays fp32 (a bf16 sublayer output added to it promotes back to fp32), as under PyTorch's
/// autocast, so bf16 rounding does not accumulate over layers.
/// </summary>
internal static class LayerNormIn
{
    public static Tensor Apply(LayerNorm norm, Tensor x, ScalarType computeDtype)
    {
        var y = norm.call(x.dtype == ScalarType.Float32 ? x : x.to_type(ScalarType.Float32));
        return computeDtype == ScalarType.Float32 ? y : y.to_type(computeDtype);
    }
}
