using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>
/// Mixed-precision linear projection: master weights stay fp32, the matmul runs in the input's dtype (bf16 on
/// CPUs with matrix units is ~4x faster). TorchSharp has no autocast, so the cast is explicit; gradients flow
/// back through the cast into the fp32 parameters.
/// </summary>
internal static class Projection
{
    public static Tensor Apply(Linear linear, Tensor x)
    {
        var w = linear.weight!;
        var bias = linear.bias;
        if (w.dtype == x.dtype)
            return nn.functional.linear(x, w, bias);
        return nn.functional.linear(x, w.to_type(x.dtype), bias?.to_type(x.dtype));
    }
}
