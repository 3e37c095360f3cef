using System.Text.Json;
using static ZCode.Tests.CliRunner;

namespace ZCode.Tests.Moe;

/// <summary>`zcode bench moe|train` and `zcode plot` end to end on tiny shapes.</summary>
[TestFixture]
public class BenchAndPlotCommandTests
{

    [Test]
    public void BenchMoe_Json_HasFiguresAndBothPathsAgree()
    {
        var (code, stdout, stderr) = Run("bench", "moe", "--tokens", "64", "--d", "8", "--ffn", "16", "--experts", "4",
            "--top-k", "2", "--repeats", "1", "--threads", "1", "--json");
        Assert.That(code, Is.EqualTo(0), stderr);
        using var doc = JsonDocument.Parse(stdout.Trim());
        var r = doc.RootElement;
        foreach (var key in new[] { "ms_index", "ms_einsum", "speedup", "bytes_index", "bytes_einsum" })
            Assert.That(r.GetProperty(key).GetDouble(), Is.GreaterThan(0), key);
        Assert.That(r.GetProperty("capacity").GetInt64(), Is.EqualTo(40));   // ceil(2 * 1.25 * 64 / 4)
        Assert.That(r.GetProperty("bytes_einsum").GetInt64(), Is.EqualTo(2L * 64 * 4 * 40 * 4));
        Assert.That(r.GetProperty("max_abs_diff").GetDouble(), Is.LessThan(1e-5));
    }

    [TestCase("--top-k", "3")]
    [TestCase("--capacity-factor", "0")]
    [TestCase("--tokens", "0")]
    public void BenchMoe_BadInput_ExitTwo(string option, string value)
    {
        var args = new List<string> { "bench", "moe", "--tokens", "64", "--d", "8", "--ffn", "16", "--experts", "4", "--top-k", "1" };
        int i = args.IndexOf(option);
        if (i >= 0) args[i + 1] = value;
        else args.AddRange(new[] { option, value });
        var (code, _, stderr) = Run(args.ToArray());
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain(option));
    }

    [Test]
    public void BenchTrain_Json_TinyModel()
    {
        var (code, stdout, stderr) = Run("bench", "train", "--set", "model.d_model=16", "--set", "model.ffn_dim=32",
            "--set", "model.vocab_size=64", "--batch", "2", "--src-len", "5", "--tgt-len", "4", "--steps", "2", "--warmup", "1", "--threads", "1", "--json");
        Assert.That(code, Is.EqualTo(0), stderr);
        using var doc = JsonDocument.Parse(stdout.Trim());
        var r = doc.RootElement;
        Assert.That(r.GetProperty("tokens_per_step").GetInt64(), Is.EqualTo(18));
        Assert.That(r.GetProperty("warmup").GetInt32(), Is.EqualTo(1));
        Assert.That(r.GetProperty("tokens_per_s").GetDouble(), Is.GreaterThan(0));
        Assert.That(r.GetProperty("step_ms").GetDouble(), Is.GreaterThan(0));
        Assert.That(r.GetProperty("params").GetInt64(), Is.GreaterThan(0));
        // One matmul probe per timed step, and the utilisation is computed from those pairs.
        Assert.That(r.GetProperty("step_ms_all").GetArrayLength(), Is.EqualTo(2));
        Assert.That(r.GetProperty("matmul_gflops_all").GetArrayLength(), Is.EqualTo(2));
        Assert.That(r.GetProperty("matmul_gflops_best").GetDouble(), Is.GreaterThanOrEqualTo(r.GetProperty("matmul_gflops").GetDouble()));
        Assert.That(r.GetProperty("mfu").GetDouble(), Is.GreaterThan(0));
    }

    [Test]
    public void TrainBenchResult_Utilisation_PairsEachStepWithItsOwnProbe()
    {
        // 100 GFLOP per step. Steps of 1 s and 2 s each ran at half their probe's rate; a slow step that had a slow probe
        // (the machine was busy for both) is as efficient as a fast step with a fast probe.
        var r = new ZCode.Benchmarks.TrainBenchResult(new ZCode.Benchmarks.TrainBenchOptions(1, 1, 1, 3), 1, 1,
            [1000.0, 2000.0, 1000.0], [200.0, 100.0, 400.0], 0, "cpu", TorchSharp.torch.ScalarType.BFloat16);
        Assert.That(r.Utilisation(100e9), Is.EqualTo(0.5).Within(1e-12));   // ratios 0.5, 0.5, 0.25
        Assert.That(r.StepMs, Is.EqualTo(1000.0));
    }

    [Test]
    public void BenchTrain_NegativeWarmup_IsAUsageError()
    {
        var (code, _, stderr) = Run("bench", "train", "--warmup", "-1");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("--warmup: must be at least 0, got -1"));
    }

    [Test]
    public void Plot_WritesLossBalanceAndUsagePngs()
    {
        var dir = Path.Combine(Path.GetTempPath(), "zcode-plot-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllLines(Path.Combine(dir, "metrics.jsonl"), new[]
            {
                """{"step":1,"loss":9.0,"nll_loss":8.9,"expert_load":[[0.7,0.1,0.1,0.1],[0.25,0.25,0.25,0.25]],"router_entropy":[1.3,1.38],"expert_usage_by_lang":{"deu_Latn":[[1,0,0,0],[0.5,0.5,0,0]],"fra_Latn":[[0,1,0,0],[0,0,0.5,0.5]]}}""",
                """{"step":2,"loss":8.0,"nll_loss":7.9,"expert_load":[[0.4,0.2,0.2,0.2],[0.25,0.25,0.25,0.25]],"router_entropy":[1.3,1.38],"expert_usage_by_lang":{"deu_Latn":[[0,0,0,1],[0.5,0.5,0,0]]}}""",
            });
            var (code, stdout, stderr) = Run("plot", "--run", dir);
            Assert.That(code, Is.EqualTo(0), stderr);
            foreach (var name in new[] { "loss.png", "expert_balance.png", "expert_usage_layer0.png", "expert_usage_layer1.png" })
            {
                var path = Path.Combine(dir, "plots", name);
                Assert.That(File.Exists(path), name);
                var head = File.ReadAllBytes(path).Take(4).ToArray();
                Assert.That(head, Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), name);
            }
            Assert.That(stdout, Does.Contain("loss.png"));

            var log = ZCode.Training.MetricsLog.Read(Path.Combine(dir, "metrics.jsonl"));
            Assert.That(log.UsageByLanguage["deu_Latn"][0], Is.EqualTo(new[] { 0.5, 0, 0, 0.5 }), "averaged over records");
            Assert.That(log.LoadImbalance[0][0], Is.EqualTo(2.8).Within(1e-9));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Plot_MissingRun_ExitTwo()
    {
        var (code, _, stderr) = Run("plot", "--run", "/nonexistent/run");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("metrics.jsonl"));
    }
}
