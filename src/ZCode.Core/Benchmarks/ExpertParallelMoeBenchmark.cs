using System.Diagnostics;
using TorchSharp;
using ZCode.Config;
using ZCode.Model.Moe;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Benchmarks;

/// <summary>Times of <see cref="ExpertParallelMoeBenchmark"/>: medians over repetitions, the slowest rank's.</summary>
/// <param name="Ranks">Expert-parallel size P (every rank of the communicator).</param>
/// <param name="Capacity">Buffer capacity C of the last forward (the group's largest).</param>
/// <param name="MsExpertParallel">Forward+backward of the layer with E/P experts per rank and its two all-to-alls.</param>
/// <param name="MsReplicated">Forward+backward of a layer holding all E experts on this rank's tokens (no communication:
/// what each rank computes when experts are replicated instead of split).</param>
/// <param name="MsAllToAll">One all-to-all of the [E, C, d] dispatch buffer alone (forward and backward do two each).</param>
/// <param name="AllToAllBytes">Bytes each rank sends in that all-to-all (its whole buffer, own block included).</param>
/// <param name="MaxAbsDiff">Largest |output difference| between the two layers over ranks and repetitions.</param>
public sealed record ExpertParallelMoeBenchResult(MoeBenchOptions Options, int Ranks, long Capacity, double MsExpertParallel,
    double MsReplicated, double MsAllToAll, long AllToAllBytes, double MaxAbsDiff);

/// <summary>
/// One MoE layer with its experts split over every rank of a communicator (expert parallelism, docs/ARCHITECTURE.md §1) against
/// the same layer with all experts replicated on each rank. Every rank routes its own <see cref="MoeBenchOptions.Tokens"/>
/// tokens; both layers hold rank 0's weights (the split layer its slice of the experts), so their outputs must agree,
/// which the run checks. Collective: every rank calls it.
/// </summary>
public static class ExpertParallelMoeBenchmark
{
    public static ExpertParallelMoeBenchResult Run(ICommunicator comm, MoeBenchOptions o, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(comm);
        device ??= CPU;
        var cfg = new MoeConfig
        {
            Experts = o.Experts, TopK = o.TopK, CapacityFactor = o.CapacityFactor, EvalCapacityFactor = o.CapacityFactor,
            MinCapacity = 4, TokenPriority = o.Priority,
        };
        var group = new ExpertParallelGroup(comm);
        manual_seed(o.Seed);
        using var replicated = new MoeLayer("bench", o.DModel, o.FfnDim, cfg);
        using var split = new MoeLayer("bench", o.DModel, o.FfnDim, cfg, 0, group);
        // Rank 0's weights everywhere, the split layer holding its slice of them: the two layers compute the same function.
        using (no_grad())
        {
            foreach (var (name, p) in replicated.named_parameters())
                comm.Broadcast(p, 0);
            var full = replicated.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, p) in split.named_parameters())
                p.copy_(name == "router.weight" ? full[name] : full[name].narrow(0, split.FirstExpert, split.LocalExperts));
        }
        replicated.to(device);
        split.to(device);
        replicated.train();
        split.train();

        using var gen = new Generator((ulong)(o.Seed * 1000 + comm.Rank));
        using var x = randn(new long[] { o.Tokens, o.DModel }, generator: gen).to(device);
        using var upstream = randn(new long[] { o.Tokens, o.DModel }, generator: gen).to(device);

        var msSplit = new List<double>();
        var msReplicated = new List<double>();
        var msExchange = new List<double>();
        double maxDiff = 0;
        long capacity = 0;
        for (int i = 0; i < o.Warmup + o.Repeats; i++)
        {
            // Same routing noise for both layers (RTS), a different stream per rank and repetition.
            long seed = o.Seed + 7919L * i + comm.Rank;
            var (tSplit, ySplit) = Time(comm, split, x, upstream, seed);
            var (tRep, yRep) = Time(comm, replicated, x, upstream, seed);
            capacity = (long)HostCollectives.AllReduceMax(comm, [split.LastCapacity])[0]; // the split layer's buffer capacity
            double tExchange = TimeExchange(comm, o, capacity, device);
            using (var diff = (ySplit - yRep).abs().max()) maxDiff = Math.Max(maxDiff, diff.item<float>());
            ySplit.Dispose();
            yRep.Dispose();
            if (i >= o.Warmup)
            {
                msSplit.Add(tSplit);
                msReplicated.Add(tRep);
                msExchange.Add(tExchange);
            }
        }
        double[] slowest = HostCollectives.AllReduceMax(comm, [BenchStats.Median(msSplit), BenchStats.Median(msReplicated), BenchStats.Median(msExchange), maxDiff]);
        long bytes = o.Experts * capacity * o.DModel * sizeof(float);
        return new ExpertParallelMoeBenchResult(o, comm.Size, capacity, slowest[0], slowest[1], slowest[2], bytes, slowest[3]);
    }

    private static (double Ms, Tensor Y) Time(ICommunicator comm, MoeLayer layer, Tensor x, Tensor upstream, long seed)
    {
        layer.zero_grad();
        layer.Seed = seed;
        comm.Barrier(); // every rank starts together, so the time includes waiting for the slowest at the all-to-alls
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        var xi = x.detach().requires_grad_(true);
        var y = layer.forward(xi, null);
        y.backward(new[] { upstream });
        if (y.device_type == TorchSharp.DeviceType.CUDA) cuda.synchronize();
        double ms = clock.Elapsed.TotalMilliseconds;
        return (ms, y.detach().MoveToOuterDisposeScope());
    }

    private static double TimeExchange(ICommunicator comm, MoeBenchOptions o, long capacity, Device device)
    {
        using var buffer = zeros(new long[] { o.Experts, Math.Max(1, capacity), o.DModel }, ScalarType.Float32, device);
        using var received = empty_like(buffer);
        comm.Barrier();
        var clock = Stopwatch.StartNew();
        comm.AllToAll(buffer, received);
        if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize();
        return clock.Elapsed.TotalMilliseconds;
    }
}
