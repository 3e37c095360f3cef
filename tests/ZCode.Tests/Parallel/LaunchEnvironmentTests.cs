using ZCode.Parallel;

namespace ZCode.Tests.Parallel;

public class LaunchEnvironmentTests
{
    private static LaunchEnvironment Parse(params (string, string)[] vars) => LaunchEnvironment.From(vars.ToDictionary(v => v.Item1, v => v.Item2));

    [Test]
    public void NoLauncher_IsRankZeroOfOne()
        => Assert.That(Parse(("HOME", "/root")), Is.EqualTo(new LaunchEnvironment("none", 0, 1, 0, 1)));

    [Test]
    public void OpenMpi()
    {
        var e = Parse(("OMPI_COMM_WORLD_RANK", "5"), ("OMPI_COMM_WORLD_SIZE", "8"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1"), ("OMPI_COMM_WORLD_LOCAL_SIZE", "4"));
        Assert.That(e, Is.EqualTo(new LaunchEnvironment("openmpi", 5, 8, 1, 4)));
        Assert.That(e.IsMpiLauncher, Is.True);
    }

    [Test]
    public void OpenMpiInsideASlurmAllocation_PrefersOpenMpi()
        => Assert.That(Parse(("SLURM_PROCID", "0"), ("SLURM_NTASKS", "16"), ("SLURM_STEP_ID", "0"),
            ("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_SIZE", "4")), Is.EqualTo(new LaunchEnvironment("openmpi", 3, 4, 3, 4)));

    [Test]
    public void Pmi_WithHydraLocalRanks()
        => Assert.That(Parse(("PMI_RANK", "2"), ("PMI_SIZE", "4"), ("MPI_LOCALRANKID", "0"), ("MPI_LOCALNRANKS", "2")),
            Is.EqualTo(new LaunchEnvironment("pmi", 2, 4, 0, 2)));

    [Test]
    public void SrunStep_ReadsTasksPerNodeForThisNode()
        => Assert.That(Parse(("SLURM_PROCID", "9"), ("SLURM_NTASKS", "11"), ("SLURM_STEP_ID", "0"), ("SLURM_LOCALID", "1"),
                ("SLURM_NODEID", "2"), ("SLURM_STEP_TASKS_PER_NODE", "4(x2),3")),
            Is.EqualTo(new LaunchEnvironment("slurm", 9, 11, 1, 3)));

    [Test]
    public void SbatchScriptWithoutAStep_IsNotARank()
        => Assert.That(Parse(("SLURM_PROCID", "0"), ("SLURM_NTASKS", "8")).Launcher, Is.EqualTo("none"));

    [Test]
    public void Torchrun()
    {
        var e = Parse(("RANK", "3"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "2"));
        Assert.That(e, Is.EqualTo(new LaunchEnvironment("torchrun", 3, 4, 1, 2)));
        Assert.That(e.IsMpiLauncher, Is.False);
    }

    [Test]
    public void SlurmTaskLists_Expand()
        => Assert.That(LaunchEnvironment.TasksPerNode("2(x3),1,4", "K"), Is.EqualTo(new[] { 2, 2, 2, 1, 4 }));

    [TestCase("OMPI_COMM_WORLD_RANK", "x", "launcher environment: OMPI_COMM_WORLD_RANK=x is not a non-negative integer")]
    [TestCase("OMPI_COMM_WORLD_RANK", "4", "launcher environment (openmpi): OMPI_COMM_WORLD_RANK=4 must be less than OMPI_COMM_WORLD_SIZE=4")]
    [TestCase("OMPI_COMM_WORLD_RANK", "-1", "launcher environment: OMPI_COMM_WORLD_RANK=-1 is not a non-negative integer")]
    public void MalformedValues_AreOneLineErrors(string key, string value, string message)
    {
        var e = Assert.Throws<UserInputException>(() => Parse((key, value), ("OMPI_COMM_WORLD_SIZE", "4")))!;
        Assert.That(e.Message, Is.EqualTo(message));
    }

    [Test]
    public void MissingWorldSize_IsAnError()
        => Assert.That(Assert.Throws<UserInputException>(() => Parse(("PMI_RANK", "0")))!.Message,
            Is.EqualTo("launcher environment: PMI_SIZE is not set but the launcher's rank variable is"));
}
