using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Tests.Parallel;

/// <summary>The in-process test double obeys the <see cref="ICommunicator"/> contract, so tests built on it mean something.</summary>
public class InProcessGroupTests
{
    [Test]
    public void CollectivesFollowTheContract()
    {
        InProcessGroup.Run(3, comm =>
        {
            int r = comm.Rank;
            using var t = full(4, r + 1.0f);
            comm.AllReduce(t);
            Assert.That(t.data<float>().ToArray(), Is.All.EqualTo(6f));

            using var b = full(2, (float)r);
            comm.Broadcast(b, root: 2);
            Assert.That(b.data<float>().ToArray(), Is.All.EqualTo(2f));

            using var g = full(2, (float)r);
            using var gathered = zeros(6);
            comm.AllGather(g, gathered);
            Assert.That(gathered.data<float>().ToArray(), Is.EqualTo(new float[] { 0, 0, 1, 1, 2, 2 }));

            using var rs = arange(6, dtype: ScalarType.Float32);
            using var part = zeros(2);
            comm.ReduceScatter(rs, part);
            Assert.That(part.data<float>().ToArray(), Is.EqualTo(new[] { 3f * (2 * r), 3f * (2 * r + 1) }));

            // Rank r sends j+1 rows of value 10r+j to rank j.
            var send = Enumerable.Range(0, 3).Select(j => (long)(j + 1)).ToArray();
            using var input = cat(Enumerable.Range(0, 3).Select(j => full(new long[] { j + 1, 2 }, 10f * r + j)).ToArray());
            var recv = Enumerable.Repeat((long)(r + 1), 3).ToArray();
            using var output = zeros(3 * (r + 1), 2);
            comm.AllToAllV(input, send, output, recv);
            var got = output.select(1, 0).data<float>().ToArray();
            var want = Enumerable.Range(0, 3).SelectMany(j => Enumerable.Repeat(10f * j + r, r + 1)).ToArray();
            Assert.That(got, Is.EqualTo(want));

            using var sub = comm.Split(color: r % 2, key: -r);
            Assert.That(sub.Size, Is.EqualTo(r % 2 == 0 ? 2 : 1));
            using var s = full(1, (float)r);
            sub.AllReduce(s);
            Assert.That(s.item<float>(), Is.EqualTo(r % 2 == 0 ? 2f : 1f));
            if (r == 0) Assert.That(sub.Rank, Is.EqualTo(1)); // key -r puts rank 2 first
        });
    }

    [Test]
    public void ARankThatFailsMakesTheOthersTimeOutInsteadOfHanging()
    {
        var e = Assert.Throws<AggregateException>(() => InProcessGroup.Run(2, comm =>
        {
            if (comm.Rank == 1) throw new InvalidOperationException("boom");
            using var t = ones(1);
            comm.AllReduce(t);
            comm.AllReduce(t);
        }, TimeSpan.FromSeconds(2)));
        Assert.That(e!.ToString(), Does.Contain("boom"));
    }
}
