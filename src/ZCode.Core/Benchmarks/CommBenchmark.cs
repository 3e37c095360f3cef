using System.Diagnostics;
using TorchSharp;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Benchmarks;

/// <summary>How the --fail-rank diagnostic fails: throw, stop responding, or SIGKILL itself.</summary>
public enum CommBenchFailure { Raise, Stall, Kill }

/// <summary>Message size, timed iterations and element type of <see cref="CommBenchmark"/>; rank <c>FailRank</c>
/// (if any) fails after the first verified collective, to exercise the job-abort and timeout paths.</summary>
public sealed record CommBenchOptions(long Bytes, int Iterations, ScalarType Dtype, int Warmup = 1, int FailRank = -1,
    CommBenchFailure FailMode = CommBenchFailure.Raise);

/// <summary>One collective's figures (nccl-tests conventions): mean time per call of the slowest rank, algorithm
/// bandwidth = bytes / time, bus bandwidth = algorithm bandwidth x the collective's link-traffic factor.</summary>
public sealed record CommBenchRow(string Collective, long Bytes, double Ms, double AlgGBps, double BusGBps);

/// <summary>A collective returned wrong values on some rank; every rank throws it with the same rank list.</summary>
public sealed class CommVerificationException(string message) : Exception(message);

/// <summary>
/// Runs every collective of <see cref="ICommunicator"/> (like nccl-tests' *_perf), checks each call's result against
/// values computed in closed form, and times it. Inputs are small integers (i mod 7 plus a rank term), so every
/// expected value is exact in every supported dtype (bfloat16 included). After each collective the ranks agree on
/// who saw wrong values, so all ranks fail together with the same message instead of leaving peers waiting.
/// </summary>
public static class CommBenchmark
{
    public static readonly string[] Collectives =
        ["all-reduce", "reduce-scatter", "all-gather", "all-to-all", "all-to-all-v", "broadcast", "barrier"];

    private const int RowWidth = 16; // elements per all-to-all-v row

    public static List<CommBenchRow> Run(ICommunicator comm, CommBenchOptions o, Device device)
    {
        if (o.Iterations < 1) throw new ArgumentOutOfRangeException(nameof(o), "iterations must be at least 1");
        long elementSize = o.Dtype.ElementSize();
        int p = comm.Size;
        // Elements per call, a multiple of Size * RowWidth so every split is even.
        long unit = (long)p * RowWidth;
        long n = Math.Max(unit, o.Bytes / elementSize / unit * unit);
        var rows = new List<CommBenchRow>();
        var times = new double[Collectives.Length];
        for (int c = 0; c < Collectives.Length; c++)
        {
            using var scope = NewDisposeScope();
            var bench = Make(Collectives[c], comm, n, o.Dtype, device);
            double total = 0;
            for (int it = 0; it < o.Warmup + o.Iterations; it++)
            {
                bench.Prepare(it);
                var clock = Stopwatch.StartNew();
                bench.Run(it);
                double ms = clock.Elapsed.TotalMilliseconds;
                if (it >= o.Warmup) total += ms;
                Agree(comm, Collectives[c], bench.Check(it));
            }
            times[c] = total / o.Iterations;
            if (comm.Rank == o.FailRank)
                Fail(o.FailMode, Collectives[c], o.FailRank);
        }
        // Report the slowest rank's mean: a collective finishes when its last rank does.
        times = HostCollectives.AllReduceMax(comm, times);
        for (int c = 0; c < Collectives.Length; c++)
        {
            var bench = Bytes(Collectives[c], n, elementSize, p);
            double seconds = times[c] / 1000, alg = bench == 0 || seconds <= 0 ? 0 : bench / seconds / 1e9;
            rows.Add(new CommBenchRow(Collectives[c], bench, times[c], alg, alg * BusFactor(Collectives[c], p)));
        }
        return rows;
    }

    private static void Fail(CommBenchFailure mode, string after, int rank)
    {
        switch (mode)
        {
            case CommBenchFailure.Kill:
                Process.GetCurrentProcess().Kill(); // SIGKILL: no handler, no MPI_Abort, like an OOM kill
                break;
            case CommBenchFailure.Stall:
                Thread.Sleep(Timeout.Infinite);
                break;
        }
        throw new InvalidOperationException($"bench comm: simulated failure after {after} (--fail-rank {rank})");
    }

    /// <summary>Bytes counted per call (nccl-tests: the larger of the send and receive buffers).</summary>
    public static long Bytes(string collective, long n, long elementSize, int size) => collective == "barrier" ? 0 : n * elementSize;

    /// <summary>nccl-tests' bus-bandwidth factors: what one rank's links carry relative to the buffer size.</summary>
    public static double BusFactor(string collective, int size) => collective switch
    {
        "all-reduce" => 2.0 * (size - 1) / size,
        "reduce-scatter" or "all-gather" or "all-to-all" or "all-to-all-v" => (double)(size - 1) / size,
        "broadcast" => 1,
        _ => 0,
    };

    /// <summary>All ranks learn which ranks saw wrong values; throws on every rank when any did.</summary>
    private static void Agree(ICommunicator comm, string collective, string? localError)
    {
        var bad = new double[comm.Size];
        if (localError is not null) bad[comm.Rank] = 1;
        var failed = HostCollectives.AllReduceSum(comm, bad).Select((v, r) => (v, r)).Where(x => x.v != 0).Select(x => x.r).ToList();
        if (failed.Count == 0) return;
        var mine = localError is null ? "" : $"; on rank {comm.Rank}: {localError}";
        throw new CommVerificationException($"bench comm: {collective} gave wrong values on rank{(failed.Count > 1 ? "s" : "")} {string.Join(", ", failed)}{mine}");
    }

    private abstract class Case
    {
        public abstract void Prepare(int iteration);
        public abstract void Run(int iteration);
        public abstract string? Check(int iteration);

        protected static string? Compare(Tensor actual, Tensor expected)
        {
            using (var same = actual.eq(expected).all()) if (same.item<bool>()) return null;
            using var diff = actual.to_type(ScalarType.Float64).ne(expected.to_type(ScalarType.Float64)).reshape(-1).nonzero();
            long at = diff[0, 0].item<long>();
            return $"element {at}: expected {expected.reshape(-1)[at].to_type(ScalarType.Float64).item<double>()}, " +
                   $"got {actual.reshape(-1)[at].to_type(ScalarType.Float64).item<double>()}";
        }
    }

    /// <summary>i mod 7 for i in [0, n): the per-element part of every input.</summary>
    private static Tensor Pattern(long n, ScalarType dtype, Device device) => arange(n, ScalarType.Int64, device: device).remainder(7).to_type(dtype);

    private static Case Make(string collective, ICommunicator comm, long n, ScalarType dtype, Device device) => collective switch
    {
        "all-reduce" => new AllReduceCase(comm, n, dtype, device),
        "reduce-scatter" => new ReduceScatterCase(comm, n, dtype, device),
        "all-gather" => new AllGatherCase(comm, n, dtype, device),
        "all-to-all" => new AllToAllCase(comm, n, dtype, device),
        "all-to-all-v" => new AllToAllVCase(comm, n, dtype, device),
        "broadcast" => new BroadcastCase(comm, n, dtype, device),
        "barrier" => new BarrierCase(comm),
        _ => throw new ArgumentException($"unknown collective {collective}"),
    };

    /// <summary>Sum on even iterations, max on odd ones: rank r holds pattern + r + 1.</summary>
    private sealed class AllReduceCase(ICommunicator comm, long n, ScalarType dtype, Device device) : Case
    {
        private readonly Tensor pattern = Pattern(n, dtype, device);
        private readonly Tensor data = empty(n, dtype, device: device);
        private Tensor Expected(int it)
        {
            int p = comm.Size;
            return it % 2 == 0 ? pattern * p + p * (p + 1) / 2 : pattern + p;
        }
        public override void Prepare(int it) => data.copy_(pattern + (comm.Rank + 1));
        public override void Run(int it) => comm.AllReduce(data, it % 2 == 0 ? ReduceOp.Sum : ReduceOp.Max);
        public override string? Check(int it) { using var e = Expected(it); return Compare(data, e); }
    }

    /// <summary>Rank r holds pattern + r + 1 over Size * m elements and receives block r of the sum.</summary>
    private sealed class ReduceScatterCase(ICommunicator comm, long n, ScalarType dtype, Device device) : Case
    {
        private readonly Tensor input = Pattern(n, dtype, device) + (comm.Rank + 1);
        private readonly Tensor output = empty(n / comm.Size, dtype, device: device);
        private readonly Tensor expected = Pattern(n, dtype, device).narrow(0, comm.Rank * (n / comm.Size), n / comm.Size) * comm.Size
                                           + comm.Size * (comm.Size + 1) / 2;
        public override void Prepare(int it) => output.fill_(-1);
        public override void Run(int it) => comm.ReduceScatter(input, output);
        public override string? Check(int it) => Compare(output, expected);
    }

    /// <summary>Rank r contributes pattern + r + 1 (n / Size elements); block j of the output is pattern + j + 1.</summary>
    private sealed class AllGatherCase(ICommunicator comm, long n, ScalarType dtype, Device device) : Case
    {
        private readonly Tensor input = Pattern(n / comm.Size, dtype, device) + (comm.Rank + 1);
        private readonly Tensor output = empty(n, dtype, device: device);
        private readonly Tensor expected = cat(Enumerable.Range(0, comm.Size).Select(j => Pattern(n / comm.Size, dtype, device) + (j + 1)).ToArray());
        public override void Prepare(int it) => output.fill_(-1);
        public override void Run(int it) => comm.AllGather(input, output);
        public override string? Check(int it) => Compare(output, expected);
    }

    /// <summary>Tag of the block rank <paramref name="src"/> sends to <paramref name="dst"/>, kept below 100 so
    /// tag + pattern stays exact in bfloat16.</summary>
    private static int Tag(int src, int dst, int size) => (src * size + dst) % 89 + 1;

    private sealed class AllToAllCase(ICommunicator comm, long n, ScalarType dtype, Device device) : Case
    {
        private readonly Tensor input = Blocks(comm, n, dtype, device, j => Tag(comm.Rank, j, comm.Size));
        private readonly Tensor output = empty(n, dtype, device: device);
        private readonly Tensor expected = Blocks(comm, n, dtype, device, j => Tag(j, comm.Rank, comm.Size));
        public override void Prepare(int it) => output.fill_(-1);
        public override void Run(int it) => comm.AllToAll(input, output);
        public override string? Check(int it) => Compare(output, expected);

        private static Tensor Blocks(ICommunicator comm, long n, ScalarType dtype, Device device, Func<int, int> tag)
            => cat(Enumerable.Range(0, comm.Size).Select(j => Pattern(n / comm.Size, dtype, device) + tag(j)).ToArray());
    }

    /// <summary>Rank r sends k * (1 + (r + 2j) mod 3) rows of width 16 to rank j, each row tagged with (r, j).</summary>
    private sealed class AllToAllVCase : Case
    {
        private readonly ICommunicator comm;
        private readonly long[] send, recv;
        private readonly Tensor input, output, expected;

        public AllToAllVCase(ICommunicator comm, long n, ScalarType dtype, Device device)
        {
            this.comm = comm;
            int p = comm.Size, r = comm.Rank;
            long k = Math.Max(1, n / RowWidth / (2L * p));
            send = Enumerable.Range(0, p).Select(j => k * (1 + (r + 2 * j) % 3)).ToArray();
            recv = Enumerable.Range(0, p).Select(j => k * (1 + (j + 2 * r) % 3)).ToArray();
            input = Rows(send, j => Tag(r, j, p), dtype, device);
            expected = Rows(recv, j => Tag(j, r, p), dtype, device);
            output = empty(expected.shape, dtype, device: device);
        }

        private static Tensor Rows(long[] counts, Func<int, int> tag, ScalarType dtype, Device device)
            => cat(counts.Select((c, j) => (Pattern(c * RowWidth, dtype, device) + tag(j)).view(c, RowWidth)).ToArray());

        public override void Prepare(int it) => output.fill_(-1);
        public override void Run(int it) => comm.AllToAllV(input, send, output, recv);
        public override string? Check(int it) => Compare(output, expected);
    }

    /// <summary>The root rotates with the iteration; rank r starts from pattern + r + 1.</summary>
    private sealed class BroadcastCase(ICommunicator comm, long n, ScalarType dtype, Device device) : Case
    {
        private readonly Tensor pattern = Pattern(n, dtype, device);
        private readonly Tensor data = empty(n, dtype, device: device);
        public override void Prepare(int it) => data.copy_(pattern + (comm.Rank + 1));
        public override void Run(int it) => comm.Broadcast(data, it % comm.Size);
        public override string? Check(int it) { using var e = pattern + (it % comm.Size + 1); return Compare(data, e); }
    }

    private sealed class BarrierCase(ICommunicator comm) : Case
    {
        public override void Prepare(int it) { }
        public override void Run(int it) => comm.Barrier();
        public override string? Check(int it) => null;
    }
}
