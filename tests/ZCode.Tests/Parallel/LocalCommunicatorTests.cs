using ZCode.Benchmarks;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Tests.Parallel;

public class LocalCommunicatorTests
{
    [Test]
    public void CollectivesAreIdentitiesAndCopies()
    {
        using var comm = new LocalCommunicator();
        Assert.That((comm.Rank, comm.Size, comm.Backend), Is.EqualTo((0, 1, "local")));
        using var t = arange(6, dtype: ScalarType.Float32);
        comm.AllReduce(t, ReduceOp.Max);
        comm.Broadcast(t, 0);
        comm.Barrier();
        Assert.That(t.data<float>().ToArray(), Is.EqualTo(new float[] { 0, 1, 2, 3, 4, 5 }));
        using var o = zeros(2, 3);
        comm.AllGather(t, o);
        Assert.That(o.reshape(-1).data<float>().ToArray(), Is.EqualTo(t.data<float>().ToArray()));
        using var v = zeros(3, 2);
        comm.AllToAllV(t.view(3, 2), [3], v, [3]);
        Assert.That(v.reshape(-1).data<float>().ToArray(), Is.EqualTo(t.data<float>().ToArray()));
        Assert.Throws<ArgumentException>(() => comm.AllToAllV(t.view(3, 2), [2], v, [2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => comm.Broadcast(t, 1));
        using var sub = comm.Split(7, 0);
        Assert.That((sub.Rank, sub.Size), Is.EqualTo((0, 1)));
    }

    [Test]
    public void CommBenchmarkVerifiesEveryCollective()
    {
        using var comm = new LocalCommunicator();
        var rows = CommBenchmark.Run(comm, new CommBenchOptions(4096, 2, ScalarType.Float32), CPU);
        Assert.That(rows.Select(r => r.Collective), Is.EqualTo(CommBenchmark.Collectives));
    }
}
