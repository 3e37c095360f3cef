using ZCode.Config;
using static TorchSharp.torch;

namespace ZCode.Tests.Moe;

/// <summary>Small helpers shared by the MoE tests: tensor construction, host reads, hand softmax.</summary>
internal static class MoeTestUtil
{
    public static Tensor Logits(long rows, long experts, params float[] values) =>
        tensor(values, new[] { rows, experts });

    public static float[] Floats(Tensor t) { using var a = t.cpu().contiguous().data<float>(); return a.ToArray(); }
    public static long[] Longs(Tensor t) { using var a = t.cpu().contiguous().data<long>(); return a.ToArray(); }
    public static bool[] Bools(Tensor t) { using var a = t.cpu().contiguous().data<bool>(); return a.ToArray(); }

    /// <summary>Softmax of one row, in double, by hand.</summary>
    public static double[] Softmax(params double[] row)
    {
        double max = row.Max();
        var ex = row.Select(v => Math.Exp(v - max)).ToArray();
        double sum = ex.Sum();
        return ex.Select(v => v / sum).ToArray();
    }

    public static double LogSumExp(params double[] row)
    {
        double max = row.Max();
        return max + Math.Log(row.Sum(v => Math.Exp(v - max)));
    }

    public static MoeConfig Cfg(int experts, int topK, double cf = 1.0, double evalCf = 2.0, int minCapacity = 0,
        string priority = "order", double jitter = 0.0, double expertDropout = 0.0, string? noisyGate = null) => new()
    {
        Experts = experts,
        TopK = topK,
        CapacityFactor = cf,
        EvalCapacityFactor = evalCf,
        MinCapacity = minCapacity,
        TokenPriority = priority,
        Jitter = jitter,
        NoisyGate = noisyGate ?? (jitter > 0 ? "jitter" : "none"),
        ExpertDropout = expertDropout,
    };

    /// <summary>Max absolute difference between two tensors of the same shape.</summary>
    public static double MaxDiff(Tensor a, Tensor b) =>
        (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
}
