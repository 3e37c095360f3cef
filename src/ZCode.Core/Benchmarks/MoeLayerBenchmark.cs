using System.Diagnostics;
using ZCode.Config;
using ZCode.Model.Moe;
using static TorchSharp.torch;

namespace ZCode.Benchmarks;

/// <summary>Shape and repetitions of <see cref="MoeLayerBenchmark"/>.</summary>
public sealed record MoeBenchOptions(int Tokens, int DModel, int FfnDim, int Experts, int TopK, double CapacityFactor,
    int Repeats = 5, int Warmup = 2, string Priority = "order", long Seed = 1);

/// <summary>Median forward+backward times and dispatch-tensor bytes of both dispatch paths.</summary>
public sealed record MoeBenchResult(MoeBenchOptions Options, long Capacity, double MsIndex, double MsEinsum,
    long BytesIndex, long BytesEinsum, double MaxAbsDiff)
{
    public double Speedup => MsEinsum / MsIndex;
}

/// <summary>
/// Times forward + backward of one MoE layer (fp32, training mode, same routing for both) with the index dispatch of
/// <see cref="MoeLayer"/> (<see cref="MoeLayer.RunExperts"/>, the path training uses) and with the one-hot einsum dispatch of <see cref="MoeEinsumDispatch"/>. The two run
/// alternately in one loop, so machine noise hits both alike; each reports its median.
/// </summary>
public static class MoeLayerBenchmark
{
    public static MoeBenchResult Run(MoeBenchOptions o)
    {
        manual_seed(o.Seed);
        var cfg = new MoeConfig
        {
            Experts = o.Experts, TopK = o.TopK, CapacityFactor = o.CapacityFactor, EvalCapacityFactor = o.CapacityFactor,
            MinCapacity = 4, TokenPriority = o.Priority,
        };
        using var layer = new MoeLayer("bench", o.DModel, o.FfnDim, cfg) { Seed = o.Seed };
        layer.train();
        using var x = randn(o.Tokens, o.DModel);
        using var upstream = randn(o.Tokens, o.DModel);

        var index = new List<double>();
        var einsum = new List<double>();
        long bytesIndex = 0, bytesEinsum = 0, capacity = 0;
        double maxDiff = 0;
        for (int i = 0; i < o.Warmup + o.Repeats; i++)
        {
            // Same generator state for both paths, so both route identically (RTS draws the same noise).
            long seed = o.Seed + i;
            var (tIndex, yIndex, bIndex, cap) = Time(layer, x, upstream, seed, einsumPath: false);
            var (tEinsum, yEinsum, bEinsum, _) = Time(layer, x, upstream, seed, einsumPath: true);
            if (i >= o.Warmup)
            {
                index.Add(tIndex);
                einsum.Add(tEinsum);
            }
            using (var diff = (yIndex - yEinsum).abs().max()) maxDiff = Math.Max(maxDiff, diff.item<float>());
            yIndex.Dispose();
            yEinsum.Dispose();
            bytesIndex = bIndex;
            bytesEinsum = bEinsum;
            capacity = cap;
        }
        return new MoeBenchResult(o, capacity, BenchStats.Median(index), BenchStats.Median(einsum), bytesIndex, bytesEinsum, maxDiff);
    }

    private static (double Ms, Tensor Y, long Bytes, long Capacity) Time(MoeLayer layer, Tensor x, Tensor upstream, long seed, bool einsumPath)
    {
        // Gradients set to none: backward then hands its fresh weight gradients over instead of adding them into old
        // ones (with E=128 each expert weight gradient is 512 MiB, and the extra add measured slower on both paths).
        layer.zero_grad();
        layer.Seed = seed;
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        var xi = x.detach().requires_grad_(true);
        Tensor y;
        long bytes;
        var r = layer.RouteTokens(xi, null);
        if (einsumPath)
        {
            y = MoeEinsumDispatch.Forward(layer, xi, r, out bytes);
        }
        else
        {
            y = layer.RunExperts(xi, r);
            bytes = IndexDispatchBytes(r, MoeDispatchPlan.From(r));
        }
        y.backward(new[] { upstream });
        double ms = clock.Elapsed.TotalMilliseconds;
        return (ms, y.detach().MoveToOuterDisposeScope(), bytes, r.Capacity);
    }

    /// <summary>Bytes of the index dispatch's per-slot tensors: the routing's slot vectors (expert, token, position,
    /// kept, gate) and the plan's kept-slot vectors (token, row, gate). Both paths share the [E, C, d] buffer.</summary>
    public static long IndexDispatchBytes(MoeRoutingResult r, MoeDispatchPlan plan)
    {
        long Bytes(Tensor t) => t.numel() * t.element_size();
        return Bytes(r.ExpertIndex) + Bytes(r.TokenIndex) + Bytes(r.Position) + Bytes(r.Kept) + Bytes(r.Gate)
               + Bytes(plan.Tokens) + Bytes(plan.Rows) + Bytes(plan.Gates);
    }
}
