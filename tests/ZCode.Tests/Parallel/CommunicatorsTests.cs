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
    public void AutoPicksTheBackend(string backend, bool cuda, string launch, string expected)
    {
        var env = launch switch { "mpirun4" => Mpirun4, "mpirun1" => Mpirun1, _ => Alone };
        Assert.That(Communicators.Resolve(backend, cuda, env), Is.EqualTo(expected));
    }

    [Test]
    public void TorchrunWithSeveralRanks_IsAClearProblem()
        => Assert.That(Communicators.Problem("auto", true, new LaunchEnvironment("torchrun", 0, 2, 0, 2)),
            Does.Contain("start the ranks with mpirun or srun"));

    [TestCase("local", false, "local runs one process, but the launcher (openmpi) started 4; use auto, mpi or nccl")]
    [TestCase("nccl", false, "nccl reduces CUDA tensors, but training runs on the CPU")]
    [TestCase("mpi", true, "mpi reduces CPU tensors only, but training runs on CUDA")]
    public void BackendThatCannotConnectTheRanks_IsAProblem(string backend, bool cuda, string expected)
        => Assert.That(Communicators.Problem(backend, cuda, Mpirun4), Does.StartWith(expected));

    [TestCase("auto", false)]
    [TestCase("auto", true)]
    [TestCase("mpi", false)]
    [TestCase("nccl", true)]
    public void BackendThatConnectsTheRanks_IsNoProblem(string backend, bool cuda)
        => Assert.That(Communicators.Problem(backend, cuda, Mpirun4), Is.Null);

    [Test]
    public void CreatingAnUnvalidatedLaunch_IsAProgrammingError()
    {
        // The config validator (and bench's --backend check) reject this first, with the same text, as bad input.
        var e = Assert.Throws<InvalidOperationException>(() => Communicators.Create("local", TimeSpan.FromSeconds(1), false, Mpirun4))!;
        Assert.That(e.Message, Does.Contain(Communicators.Problem("local", false, Mpirun4)));
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
