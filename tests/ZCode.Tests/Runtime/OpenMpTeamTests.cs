using ZCode.Runtime;
using static TorchSharp.torch;

namespace ZCode.Tests.Runtime;

/// <summary>Parts run on LibTorch's OpenMP threads: each exactly once, on more than one thread when two are set, and a
/// part's exception reaches the caller.</summary>
[NonParallelizable]
public class OpenMpTeamTests
{
    private static T WithThreads<T>(int threads, Func<T> body)
    {
        using var _ = IntraOpThreads.Kept(threads);
        using var warm = ones(1 << 20).sum();   // LibTorch's team exists once it ran a parallel op
        return body();
    }

    [Test]
    public void TheTeamIsFoundOnLinux()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("GNU OpenMP is LibTorch's runtime on Linux only");
        using var _ = zeros(1);
        Assert.That(OpenMpTeam.Available, Is.True, "GOMP_parallel not found through libtorch_cpu");
    }

    [TestCase(1, 1)]
    [TestCase(2, 2)]
    [TestCase(2, 7)]
    public void EveryPartRunsExactlyOnce(int threads, int parts)
    {
        var runs = WithThreads(threads, () =>
        {
            var counts = new int[parts];
            OpenMpTeam.Run(parts, p => Interlocked.Increment(ref counts[p]));
            return counts;
        });
        Assert.That(runs, Is.All.EqualTo(1));
    }

    [Test]
    public void TwoThreadsShareTheParts()
    {
        if (!OpenMpTeam.Available || Environment.ProcessorCount < 2) Assert.Ignore("needs the OpenMP team and two cores");
        var threadsSeen = WithThreads(2, () =>
        {
            var ids = new int[2];
            // Each part waits for the other to start, so one thread cannot run both.
            using var both = new CountdownEvent(2);
            OpenMpTeam.Run(2, p =>
            {
                ids[p] = Environment.CurrentManagedThreadId;
                both.Signal();
                both.Wait(TimeSpan.FromSeconds(10));
            });
            return ids.Distinct().Count();
        });
        Assert.That(threadsSeen, Is.EqualTo(2));
    }

    [Test]
    public void APartsExceptionReachesTheCaller()
    {
        var error = Assert.Throws<InvalidOperationException>(() => WithThreads(2, () =>
        {
            OpenMpTeam.Run(2, p => { if (p == 1) throw new InvalidOperationException("part 1 failed"); });
            return 0;
        }));
        Assert.That(error!.Message, Is.EqualTo("part 1 failed"));
    }
}
