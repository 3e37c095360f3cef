using TorchSharp;
using ZCode.Benchmarks;
using ZCode.Parallel;
using ZCode.Parallel.Nccl;
using static TorchSharp.torch;

namespace ZCode.Tests.Parallel;

/// <summary>
/// <see cref="NcclCommunicator"/>'s logic against <see cref="FakeNccl"/> on CPU buffers: unique-id exchange, argument
/// marshalling and dtype mapping, send/receive pairing inside one group for all-to-all(v), split, and the
/// error, asynchronous-error and timeout paths that must abort the NCCL communicator.
/// </summary>
public class NcclCommunicatorTests
{
    private static NcclCommunicator Make(FakeNccl api, ICommunicator boot, double timeoutS = 30)
        => new(api, boot, deviceIndex: boot.Rank + 4, TimeSpan.FromSeconds(timeoutS), DeviceType.CPU, ownsBootstrap: false);

    [Test]
    public void EveryCollectiveVerifiesOnThreeRanks_AndSplitGroupsWork()
    {
        var world = new FakeNcclWorld();
        var apis = new FakeNccl[3];
        InProcessGroup.Run(3, boot =>
        {
            var api = apis[boot.Rank] = new FakeNccl(world);
            using var nccl = Make(api, boot);
            Assert.That((nccl.Rank, nccl.Size, nccl.Backend), Is.EqualTo((boot.Rank, 3, "nccl")));
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16, ScalarType.Int64 })
                CommBenchmark.Run(nccl, new CommBenchOptions(3000, 2, dtype), CPU);

            // Ranks 0 and 2 (color 0) and rank 1 (color 1) form new groups; key 0 keeps the world order.
            using var sub = nccl.Split(boot.Rank % 2, 0);
            Assert.That(sub.Size, Is.EqualTo(boot.Rank % 2 == 0 ? 2 : 1));
            using var t = full(5, boot.Rank + 1.0f);
            sub.AllReduce(t);
            Assert.That(t.data<float>().ToArray(), Is.All.EqualTo(boot.Rank % 2 == 0 ? 4f : 2f));
        });
        // All ranks joined with rank 0's id, on their own device, and destroyed (not aborted) their communicators.
        var inits = apis.Select(a => a.Calls.First(c => c.StartsWith("CommInitRank"))).ToList();
        Assert.That(inits, Is.EqualTo(new[] { "CommInitRank 3 0 1", "CommInitRank 3 1 1", "CommInitRank 3 2 1" }));
        Assert.That(apis.Count(a => a.Calls.Contains("GetUniqueId")), Is.EqualTo(2), "rank 0 of the world and of the 2-rank group");
        Assert.That(apis.Select(a => a.Devices.Distinct().Single()), Is.EqualTo(new[] { 4, 5, 6 }));
        Assert.That(apis.Select(a => (a.Destroyed, a.Aborted)), Is.All.EqualTo((2, 0)));
    }

    [Test]
    public void ReductionsPassTheTensorDtypeAndGathersPassBytes()
    {
        var api = new FakeNccl(new FakeNcclWorld());
        using var boot = new LocalCommunicator();
        using var nccl = Make(api, boot);
        using var bf = ones(6, ScalarType.BFloat16);
        nccl.AllReduce(bf, ReduceOp.Max);
        using var i64 = ones(8, ScalarType.Int64);
        using var sum = zeros(8, ScalarType.Int64);
        nccl.ReduceScatter(i64, sum, ReduceOp.Sum);
        using var f = ones(3);
        using var g = zeros(3);
        nccl.AllGather(f, g);
        nccl.Broadcast(f, 0);
        Assert.That(api.Calls, Does.Contain("AllReduce 6 BFloat16 Max"));
        Assert.That(api.Calls, Does.Contain("ReduceScatter 8 Int64 Sum"));
        Assert.That(api.Calls, Does.Contain("AllGather 12 Uint8"));
        Assert.That(api.Calls, Does.Contain("Broadcast 12 Uint8 root 0"));
        using var b = ones(2, ScalarType.Bool);
        var e = Assert.Throws<ArgumentException>(() => nccl.AllReduce(b))!;
        Assert.That(e.Message, Does.Contain("all-reduce: backend nccl reduces").And.Contain("not Bool"));
    }

    [Test]
    public void AllToAllVIsOneGroupOfSendsAndReceivesAtRowOffsets_SkippingEmptyTransfers()
    {
        var world = new FakeNcclWorld();
        var apis = new FakeNccl[2];
        InProcessGroup.Run(2, boot =>
        {
            var api = apis[boot.Rank] = new FakeNccl(world);
            using var nccl = Make(api, boot);
            // Rank 0 sends 2 rows to itself and none to rank 1; rank 1 sends 1 row to rank 0 and 3 to itself.
            long[] send = boot.Rank == 0 ? [2, 0] : [1, 3];
            long[] recv = boot.Rank == 0 ? [2, 1] : [0, 3];
            using var input = arange(send.Sum() * 3, dtype: ScalarType.Float32).view(-1, 3) + 100 * boot.Rank;
            using var output = zeros(recv.Sum(), 3);
            nccl.AllToAllV(input, send, output, recv);
            var want = boot.Rank == 0
                ? new float[] { 0, 1, 2, 3, 4, 5, 100, 101, 102 }
                : new float[] { 103, 104, 105, 106, 107, 108, 109, 110, 111 };
            Assert.That(output.data<float>().ToArray(), Is.EqualTo(want));
        });
        var rank0 = apis[0].Calls.SkipWhile(c => c != "GroupStart").Take(5).ToList();
        Assert.That(rank0, Is.EqualTo(new[] { "GroupStart", "Send 24 Uint8 to 0", "Recv 24 Uint8 from 0", "Recv 12 Uint8 from 1", "GroupEnd" }));
    }

    [Test]
    public void FailedEnqueue_NamesTheNcclError_AndAborts()
    {
        var api = new FakeNccl(new FakeNcclWorld());
        using var boot = new LocalCommunicator();
        using var nccl = Make(api, boot);
        api.FailCollectives = NcclResult.RemoteError;
        using var t = ones(4);
        var e = Assert.Throws<CommunicatorException>(() => nccl.AllReduce(t))!;
        Assert.That(e.Message, Is.EqualTo("all-reduce failed on rank 0 (backend nccl): ncclRemoteError: fake text for RemoteError - " +
                                          "a peer rank failed or its connection dropped (fake detail)"));
        Assert.That(api.Aborted, Is.EqualTo(1));
        var again = Assert.Throws<CommunicatorException>(() => nccl.Barrier())!;
        Assert.That(again.Message, Does.Contain("was aborted after all-reduce failed"));
        nccl.Dispose();
        Assert.That(api.Destroyed, Is.EqualTo(0), "an aborted communicator is not destroyed again");
    }

    [Test]
    public void FailedSendInsideAGroup_StillClosesTheGroup()
    {
        var api = new FakeNccl(new FakeNcclWorld());
        using var boot = new LocalCommunicator();
        using var nccl = Make(api, boot);
        api.FailSend = NcclResult.InvalidArgument;
        using var t = ones(4, 2);
        using var o = zeros(4, 2);
        var e = Assert.Throws<CommunicatorException>(() => nccl.AllToAll(t, o))!;
        Assert.That(e.Message, Does.StartWith("all-to-all failed on rank 0 (backend nccl): ncclInvalidArgument"));
        Assert.That(api.Calls.TakeLast(2), Is.EqualTo(new[] { "GroupEnd", "CommAbort" }));
    }

    [Test]
    public void AsynchronousErrorWhileWaiting_Aborts()
    {
        var api = new FakeNccl(new FakeNcclWorld());
        using var boot = new LocalCommunicator();
        using var nccl = Make(api, boot);
        api.StreamHangs = true;
        api.AsyncError = NcclResult.SystemError;
        using var t = ones(4);
        var e = Assert.Throws<CommunicatorException>(() => nccl.Broadcast(t, 0))!;
        Assert.That(e.Message, Does.StartWith("broadcast failed on rank 0 (backend nccl): ncclSystemError"));
        Assert.That(api.Aborted, Is.EqualTo(1));
    }

    [Test]
    public void StreamThatNeverFinishes_TimesOutNamingOpRankAndLimit_AndAborts()
    {
        var api = new FakeNccl(new FakeNcclWorld());
        using var boot = new LocalCommunicator();
        using var nccl = Make(api, boot, timeoutS: 0.3);
        api.StreamHangs = true;
        using var t = ones(4);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<CommunicatorException>(() => nccl.AllReduce(t))!;
        Assert.That(clock.Elapsed.TotalSeconds, Is.InRange(0.3, 5));
        Assert.That(e.Message, Does.StartWith("all-reduce timed out after 0.3 s on rank 0 (backend nccl)").And.Contain("aborted"));
        Assert.That(api.Aborted, Is.EqualTo(1));
    }
}
