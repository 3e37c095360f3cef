using System.Text.Json;
using ZCode.Tests.Parallel;
using static ZCode.Tests.CliRunner;

namespace ZCode.Tests.Cli;

/// <summary>`zcode plan --gpus N --gpu-memory G`: the table, the JSON and bad input.</summary>
public class PlanMemoryCommandTests
{
    private static string[] Args(params string[] extra)
        => ["plan", .. MemoryPlanTests.Small.SelectMany(s => new[] { "--set", s }), .. extra];

    [Test]
    public void JsonListsEveryChoiceAndTheRecommendation()
    {
        var (code, stdout, stderr) = Run(Args("--gpus", "4", "--gpu-memory", (1_075_000_000.0 / (1L << 30)).ToString("R"), "--json"));
        Assert.That(code, Is.EqualTo(0), stderr);
        var memory = JsonDocument.Parse(stdout).RootElement.GetProperty("memory");
        Assert.That(memory.GetProperty("tokens_per_device").GetInt64(), Is.EqualTo(100));
        var choices = memory.GetProperty("choices").EnumerateArray().ToList();
        Assert.That(choices, Has.Count.EqualTo(15));
        var stage0ep2 = choices.Single(c => c.GetProperty("zero_stage").GetInt32() == 0 && c.GetProperty("expert_parallel").GetInt32() == 2);
        Assert.That(stage0ep2.GetProperty("optimizer_bytes").GetInt64(), Is.EqualTo(93312));
        Assert.That(stage0ep2.GetProperty("fits").GetBoolean(), Is.False);
        var pick = memory.GetProperty("recommended");
        Assert.That((pick.GetProperty("zero_stage").GetInt32(), pick.GetProperty("offload_optimizer").GetBoolean(),
            pick.GetProperty("expert_parallel").GetInt32()), Is.EqualTo((1, false, 2)));
        Assert.That(pick.GetProperty("fits").GetBoolean(), Is.True);
    }

    [Test]
    public void TableMarksFitsAndNamesTheSettings()
    {
        var (code, stdout, stderr) = Run(Args("--gpus", "4", "--gpu-memory", "2"));
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("memory per device on 4 devices of 2 GiB"));
        Assert.That(stdout, Does.Contain("recommended: --set parallel.zero_stage=0 --set parallel.offload_optimizer=false --set parallel.expert_parallel=1"));
        var (_, tight, _) = Run(Args("--gpus", "4", "--gpu-memory", "0.5"));
        Assert.That(tight, Does.Contain("nothing fits in 0.5 GiB per device"));
    }

    [TestCase("--gpus", "0", "--gpus")]
    [TestCase("--gpu-memory", "8", "--gpu-memory: give --gpus")]
    [TestCase("--gpu-memory", "-1", "--gpu-memory: give --gpus")]
    public void BadInputExitsTwo(string option, string value, string message)
    {
        var (code, _, stderr) = Run(Args(option, value));
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain(message));
    }

    [Test]
    public void NonPositiveMemoryExitsTwo()
    {
        var (code, _, stderr) = Run(Args("--gpus", "2", "--gpu-memory", "0"));
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain("--gpu-memory: must be a positive number of GiB"));
    }
}
