using ZCode.Parallel;

namespace ZCode.Tests.Parallel;

public class CommunicatorsTests
{
    private static readonly LaunchEnvironment Alone = new("none", 0, 1, 0, 1);
    private static readonly LaunchEnvironment Mpirun4 = new("openmpi", 1, 4, 1, 4);
    private static readonly LaunchEnvironment Mpirun1 = new("openmpi", 0, 1, 0, 1);

    [TestCase("auto", false, "none", "local")]
    [TestCase("auto", true, "none", "local")]
    [TestCase("auto", false, "mpirun4", "mpi")]
    [TestCase("auto", false, "mpirun1", "mpi")]
    [TestCase("auto", true, "mpirun4", "nccl")]
    [TestCase("auto", true, "mpirun1", "local")]
    [TestCase("mpi", false, "none", "mpi")]
    [TestCase("nccl", true, "none", "nccl")]
    [TestCase("local", false, "mpirun4", "local")]
    public void AutoPicksTheBackend(string backend, bool cuda, string launch, string expected)
    {
        var env = launch switch { "mpirun4" => Mpirun4, "mpirun1" => Mpirun1, _ => Alone };
        Assert.That(Communicators.Resolve(backend, cuda, env), Is.EqualTo(expected));
    }

    [Test]
    public void TorchrunWithSeveralRanks_IsAClearError()
    {
        var e = Assert.Throws<UserInputException>(() => Communicators.Resolve("auto", true, new LaunchEnvironment("torchrun", 0, 2, 0, 2)))!;
        Assert.That(e.Message, Does.Contain("start the ranks with mpirun or srun"));
    }

    [Test]
    public void LocalUnderAMultiRankLaunch_IsAClearError()
    {
        var e = Assert.Throws<UserInputException>(() => Communicators.Create("local", TimeSpan.FromSeconds(1), false, Mpirun4))!;
        Assert.That(e.Message, Does.StartWith("parallel.backend: local runs one process, but the launcher (openmpi) started 4"));
    }

    [Test]
    public void LocalAlone_IsTheWorldOfOne()
    {
        using var comm = Communicators.Create("auto", TimeSpan.FromSeconds(1), false, Alone);
        Assert.That((comm.Backend, comm.Size), Is.EqualTo(("local", 1)));
    }

    [Test]
    public void AbortJob_OutsideAnMpiJob_ReturnsFalse() => Assert.That(Communicators.AbortJob("x"), Is.False);
}
