using ZCode.Tests.Data;
using ZCode.Tests.Parallel;
using ZCode.Training;

namespace ZCode.Tests.Training;

/// <summary>The run directory's one-writer lock (flock on DIR/run.lock): refusal, release, and every rank of a run.</summary>
public class RunDirectoryLockTests
{
    private static string Holder => $"pid {Environment.ProcessId} on host {System.Net.Dns.GetHostName()}";

    [Test]
    public void ASecondLockIsRefusedNamingTheHolderUntilTheFirstIsReleased()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var dir = Path.Combine(tmp.Path, "run");
        var first = RunDirectoryLock.Acquire(dir);
        Assert.That(File.Exists(Path.Combine(dir, RunDirectoryLock.FileName)), Is.True);
        // flock conflicts between two opens of the file even in one process, as between two processes.
        var refused = Assert.Throws<UserInputException>(() => RunDirectoryLock.Acquire(dir))!;
        Assert.That(refused.Message, Does.StartWith(dir + ": another zcode train is writing").And.Contain(Holder));
        Assert.That(RunDirectoryLock.ReadHolder(dir)!.Pid, Is.EqualTo(Environment.ProcessId));
        first.Dispose();
        using var second = RunDirectoryLock.Acquire(dir);
        Assert.That(second.Path, Is.EqualTo(Path.Combine(dir, RunDirectoryLock.FileName)));
    }

    [Test]
    public void EveryRankOfARunLearnsOfTheRefusalAndOnlyRankZeroHoldsTheLock()
    {
        using var tmp = DataTestPaths.NewTempDir();
        var errors = new Exception?[2];
        var held = new bool[2];
        using (RunDirectoryLock.Acquire(tmp.Path))
        {
            InProcessGroup.Run(2, comm =>
            {
                try { RunDirectoryLock.AcquireOnRank0(comm, tmp.Path)?.Dispose(); }
                catch (Exception e) { errors[comm.Rank] = e; }
            });
        }
        Assert.That(errors, Has.All.InstanceOf<UserInputException>());
        Assert.That(errors.Select(e => e!.Message), Has.All.Contain(Holder));

        InProcessGroup.Run(2, comm =>
        {
            using var mine = RunDirectoryLock.AcquireOnRank0(comm, tmp.Path);
            held[comm.Rank] = mine is not null;
            comm.Barrier();
        });
        Assert.That(held, Is.EqualTo(new[] { true, false }));
    }

    [Test]
    public void TrainRefusesAHeldDirectoryWithOneLineAndWritesNothingThere()
    {
        using var tmp = DataTestPaths.NewTempDir();
        using var holder = RunDirectoryLock.Acquire(tmp.Path);
        var (code, _, err) = CliRunner.Run("train", "--set", "train.max_steps=1", "--resume", "auto", "--output", tmp.Path);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(err, Does.Contain("another zcode train is writing").And.Contain(Holder));
        Assert.That(Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName), Is.EqualTo(new[] { RunDirectoryLock.FileName }));
    }
}
