using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Tests.Parallel;

/// <summary>
/// Test double for <see cref="ICommunicator"/>: N ranks as N threads of one process, collectives through shared
/// memory. Lets tests check reduction/sharding logic of the parallel engine without mpirun.
/// <c>InProcessGroup.Run(4, comm => ...)</c> runs the body on every rank and rethrows the first failure.
/// </summary>
public sealed class InProcessGroup
{
    private readonly int size;
    private readonly Barrier barrier;
    private readonly object?[] slots;
    private readonly TimeSpan timeout;
    private readonly Dictionary<(int Seq, int Color), InProcessGroup> children = new();
    private readonly object gate = new();

    private InProcessGroup(int size, TimeSpan timeout)
    {
        this.size = size;
        this.timeout = timeout;
        barrier = new Barrier(size);
        slots = new object?[size];
    }

    /// <summary>Runs <paramref name="body"/> on <paramref name="size"/> threads, one communicator each.</summary>
    public static void Run(int size, Action<ICommunicator> body, TimeSpan? timeout = null)
    {
        var group = new InProcessGroup(size, timeout ?? TimeSpan.FromSeconds(60));
        var errors = new Exception?[size];
        var threads = Enumerable.Range(0, size).Select(r => new Thread(() =>
        {
            try
            {
                using var comm = new Member(group, r);
                body(comm);
            }
            catch (Exception e)
            {
                errors[r] = e;
                if (e is not CommunicatorException)
                    group.failedRank ??= r; // the others stop waiting for this rank and name it
            }
        }, 64 << 20)).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        var first = errors.Select((e, r) => (e, r)).Where(x => x.e is not null)
            .OrderBy(x => x.e is CommunicatorException ? 1 : 0).FirstOrDefault();
        if (first.e is not null)
            throw new AggregateException($"rank {first.r} failed: {first.e.Message}", first.e);
    }

    private volatile object? failedRankBox;

    private int? failedRank
    {
        get => (int?)failedRankBox;
        set => failedRankBox = value;
    }

    private void Sync(string op, int rank)
    {
        var waited = TimeSpan.Zero;
        var slice = TimeSpan.FromMilliseconds(50);
        while (!barrier.SignalAndWait(slice))
        {
            // SignalAndWait counted this rank in; a timed-out wait takes the signal back, so retrying is safe.
            if (failedRank is int dead)
                throw new CommunicatorException($"{op}: rank {dead} failed; rank {rank} stops waiting for it");
            waited += slice;
            if (waited >= timeout)
                throw new CommunicatorException($"{op} timed out after {timeout.TotalSeconds:F0} s on rank {rank}");
        }
    }

    private sealed class Member(InProcessGroup g, int rank) : ICommunicator
    {
        private int splitSeq;
        public int Rank => rank;
        public int Size => g.size;
        public string Backend => "in-process";
        public Device Device => CPU;

        private T[] Exchange<T>(string op, T mine)
        {
            g.slots[rank] = mine;
            g.Sync(op, rank);
            var all = g.slots.Select(s => (T)s!).ToArray();
            g.Sync(op, rank); // nobody reuses the slots before everyone has read them
            return all;
        }

        private static Tensor Reduce(IEnumerable<Tensor> ts, ReduceOp op)
        {
            Tensor? acc = null;
            foreach (var t in ts)
                acc = acc is null ? t.clone() : op == ReduceOp.Sum ? acc.add_(t) : acc.maximum(t);
            return acc!;
        }

        public void AllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum)
        {
            using var result = Reduce(Exchange("all-reduce", tensor), op);
            g.Sync("all-reduce", rank);
            tensor.copy_(result);
        }

        public void Broadcast(Tensor tensor, int root)
        {
            using var copy = Exchange("broadcast", tensor)[root].clone();
            g.Sync("broadcast", rank);
            tensor.copy_(copy);
        }

        public void AllGather(Tensor input, Tensor output)
        {
            var all = Exchange("all-gather", input.clone());
            output.view(-1).copy_(cat(all.Select(t => t.view(-1)).ToArray()));
            g.Sync("all-gather", rank);
            all[rank].Dispose();
        }

        public void ReduceScatter(Tensor input, Tensor output, ReduceOp op = ReduceOp.Sum)
        {
            long n = output.numel();
            var all = Exchange("reduce-scatter", input.clone());
            using var sum = Reduce(all.Select(t => t.view(-1).narrow(0, rank * n, n)), op);
            output.view(-1).copy_(sum);
            g.Sync("reduce-scatter", rank);
            all[rank].Dispose();
        }

        public void AllToAll(Tensor input, Tensor output)
        {
            long rows = input.shape[0] / g.size;
            var counts = Enumerable.Repeat(rows, g.size).ToArray();
            AllToAllV(input, counts, output, counts);
        }

        public void AllToAllV(Tensor input, long[] sendRows, Tensor output, long[] recvRows)
        {
            var all = Exchange("all-to-all", (input.clone(), sendRows));
            long at = 0;
            for (int j = 0; j < g.size; j++)
            {
                var (src, counts) = all[j];
                long offset = counts.Take(rank).Sum();
                if (counts[rank] != recvRows[j])
                    throw new CommunicatorException($"all-to-all: rank {j} sends {counts[rank]} rows to rank {rank}, which expects {recvRows[j]}");
                if (recvRows[j] > 0)
                    output.narrow(0, at, recvRows[j]).copy_(src.narrow(0, offset, counts[rank]));
                at += recvRows[j];
            }
            g.Sync("all-to-all", rank);
            all[rank].Item1.Dispose();
        }

        public void Barrier() => g.Sync("barrier", rank);

        public ICommunicator Split(int color, int key)
        {
            int seq = splitSeq++;
            var all = Exchange("split", (color, key));
            var members = Enumerable.Range(0, g.size).Where(r => all[r].color == color)
                .OrderBy(r => all[r].key).ThenBy(r => r).ToList();
            InProcessGroup child;
            lock (g.gate)
            {
                if (!g.children.TryGetValue((seq, color), out child!))
                    g.children[(seq, color)] = child = new InProcessGroup(members.Count, g.timeout);
            }
            return new Member(child, members.IndexOf(rank));
        }

        public void Dispose() { }
    }
}
