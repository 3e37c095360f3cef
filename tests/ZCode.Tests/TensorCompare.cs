using static TorchSharp.torch;

namespace ZCode.Tests;

/// <summary>Exact tensor comparison for assertions (TorchSharp's Tensor.equal is element-wise).</summary>
internal static class TensorCompare
{
    /// <summary>Same shape and every element equal.</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
