using ZCode.Benchmarks;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Tests.Parallel;

/// <summary>`zcode bench comm`'s verification: correct collectives pass on 3 ranks, a wrong one fails on every rank
/// with the collective and the guilty rank named.</summary>
public class CommBenchmarkTests
{
    [Test]
    public void ThreeRanks_AllDtypes_Verify()
    {
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Int32, ScalarType.BFloat16 })
            InProcessGroup.Run(3, comm =>
            {
                var rows = CommBenchmark.Run(comm, new CommBenchOptions(2000, 2, dtype), CPU);
                Assert.That(rows.Select(r => r.Collective), Is.EqualTo(CommBenchmark.Collectives));
                Assert.That(rows.Where(r => r.Collective != "barrier").Select(r => r.Bytes), Is.All.GreaterThan(0));
            });
    }

    [TestCase("all-gather")]
    [TestCase("all-to-all-v")]
    [TestCase("reduce-scatter")]
    public void AWrongResultOnOneRank_FailsEveryRankNamingCollectiveAndRank(string broken)
    {
        var messages = new string[3];
        Assert.Throws<AggregateException>(() => InProcessGroup.Run(3, comm =>
        {
            try
            {
                CommBenchmark.Run(new Corrupting(comm, broken, badRank: 2), new CommBenchOptions(2000, 1, ScalarType.Float32), CPU);
            }
            catch (CommVerificationException e)
            {
                messages[comm.Rank] = e.Message;
                throw;
            }
        }));
        Assert.That(messages[0], Is.EqualTo($"bench comm: {broken} gave wrong values on rank 2"));
        Assert.That(messages[2], Does.StartWith($"bench comm: {broken} gave wrong values on rank 2; on rank 2: element "));
    }

    [Test]
    public void BusBandwidthFactorsFollowNcclTests()
    {
        Assert.That(CommBenchmark.BusFactor("all-reduce", 4), Is.EqualTo(1.5));
        Assert.That(CommBenchmark.BusFactor("all-gather", 4), Is.EqualTo(0.75));
        Assert.That(CommBenchmark.BusFactor("broadcast", 4), Is.EqualTo(1));
    }

    /// <summary>Adds 1 to the first output element of one collective on one rank.</summary>
    private sealed class Corrupting(ICommunicator inner, string broken, int badRank) : ICommunicator
    {
        public int Rank => inner.Rank;
        public int Size => inner.Size;
        public string Backend => inner.Backend;
        public Device Device => inner.Device;
        private void Spoil(string name, Tensor t) { if (name == broken && Rank == badRank) t.view(-1)[0] += 1; }
        public void AllReduce(Tensor t, ReduceOp op = ReduceOp.Sum) { inner.AllReduce(t, op); Spoil("all-reduce", t); }
        public void Broadcast(Tensor t, int root) { inner.Broadcast(t, root); Spoil("broadcast", t); }
        public void AllGather(Tensor i, Tensor o) { inner.AllGather(i, o); Spoil("all-gather", o); }
        public void ReduceScatter(Tensor i, Tensor o, ReduceOp op = ReduceOp.Sum) { inner.ReduceScatter(i, o, op); Spoil("reduce-scatter", o); }
        public void AllToAll(Tensor i, Tensor o) { inner.AllToAll(i, o); Spoil("all-to-all", o); }
        public void AllToAllV(Tensor i, long[] s, Tensor o, long[] r) { inner.AllToAllV(i, s, o, r); Spoil("all-to-all-v", o); }
        public void Barrier() => inner.Barrier();
        public ICommunicator Split(int color, int key) => inner.Split(color, key);
        public void Dispose() { }
    }
}
