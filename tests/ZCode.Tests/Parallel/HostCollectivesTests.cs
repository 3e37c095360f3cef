using System.Collections.Concurrent;
using ZCode.Parallel;

namespace ZCode.Tests.Parallel;

public class HostCollectivesTests
{
    [Test]
    public void SumsGathersAndBroadcastsHostValuesOverThreeRanks()
    {
        var sums = new ConcurrentDictionary<int, double[]>();
        var gathered = new ConcurrentDictionary<int, long[]>();
        var stamps = new ConcurrentDictionary<int, long>();
        InProcessGroup.Run(3, comm =>
        {
            sums[comm.Rank] = HostCollectives.AllReduceSum(comm, [comm.Rank + 0.5, 1e15 + comm.Rank]);
            gathered[comm.Rank] = HostCollectives.AllGather(comm, 10L * (comm.Rank + 1));
            stamps[comm.Rank] = HostCollectives.Broadcast(comm, 20261123000000L + comm.Rank, root: 1);
        });
        for (int r = 0; r < 3; r++)
        {
            Assert.That(sums[r], Is.EqualTo(new[] { 4.5, 3e15 + 3 }), "float64 sums stay exact");
            Assert.That(gathered[r], Is.EqualTo(new long[] { 10, 20, 30 }));
            Assert.That(stamps[r], Is.EqualTo(20261123000001L));
        }
    }

    [Test]
    public void OneRankReturnsItsOwnValues()
    {
        var comm = new LocalCommunicator();
        Assert.That(HostCollectives.AllReduceSum(comm, [1.5]), Is.EqualTo(new[] { 1.5 }));
        Assert.That(HostCollectives.AllGather(comm, 7), Is.EqualTo(new long[] { 7 }));
        Assert.That(HostCollectives.Broadcast(comm, 9, 0), Is.EqualTo(9));
        Assert.That(comm.Device.type, Is.EqualTo(TorchSharp.DeviceType.CPU));
    }
}
