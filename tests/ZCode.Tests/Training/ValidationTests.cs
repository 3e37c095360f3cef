using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Tests.Data;
using static TorchSharp.torch;

namespace ZCode.Tests.Training;

/// <summary>
/// The quality loop on m3-tiny: periodic validation records, the best checkpoint, early stopping, the moving average of
/// the weights (what validation and eval use), checkpoint averaging, and validation on two in-process ranks equal to one
/// process's. Runs go through the CLI in process.
/// </summary>
[NonParallelizable]
public class ValidationTests
{
    private string root = "";

    [SetUp]
    public void Create() => Directory.CreateDirectory(root = Path.Combine(Path.GetTempPath(), "zcode-valid-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void Remove() => Directory.Delete(root, recursive: true);

    /// <summary>Small validations: English-German both ways, 8 sentences, beam 2. The changed data.valid gets its own shard
    /// folder, so the shared data-samples/shards stay prepared for the default config.</summary>
    internal static string[] Small(string shardDir) =>
    [
        "train.tokens_per_batch=512", "train.threads=1", "train.log_interval=5", $"data.shard_dir={shardDir}",
        "data.valid=[{src: eng_Latn, tgt: deu_Latn, src_path: ../data-samples/ntrex128/valid/eng_Latn.txt, " +
        "tgt_path: ../data-samples/ntrex128/valid/deu_Latn.txt}]",
        "eval.valid_sentences=8", "eval.valid_beam=2",
    ];

    private string Train(string name, params string[] settings)
    {
        var output = Path.Combine(root, name);
        var sets = Small(Path.Combine(root, "shards")).SelectMany(s => new[] { "--set", s });
        var (code, _, err) = CliRunner.Run(["train", .. sets, .. settings, "--output", output]);
        Assert.That(code, Is.EqualTo(0), err);
        return output;
    }

    internal static List<JsonElement> ValidRecords(string output) => File.ReadAllLines(Path.Combine(output, "metrics.jsonl"))
        .Where(l => l.Contains("\"type\":\"valid\"")).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Test]
    public void ValidationEveryIntervalAndAtTheEnd_BestCheckpointIsTheArgminOfTheRecords()
    {
        var output = Train("best", "--set", "train.max_steps=25", "--set", "train.eval_interval=10", "--set", "train.save_interval=0");
        var records = ValidRecords(output);
        Assert.That(records.Select(r => r.GetProperty("step").GetInt32()), Is.EqualTo(new[] { 10, 20, 25 }));
        Assert.That(records[0].GetProperty("directions").EnumerateObject().Select(d => d.Name),
            Is.EqualTo(new[] { "eng_Latn-deu_Latn", "deu_Latn-eng_Latn" }));
        Assert.That(records.All(r => r.GetProperty("weights").GetString() == "raw"));
        var losses = records.Select(r => r.GetProperty("valid_loss").GetDouble()).ToList();
        int bestStep = records[losses.IndexOf(losses.Min())].GetProperty("step").GetInt32();

        var best = CheckpointReader.ReadVerifiedManifest(Path.Combine(output, "checkpoints", "best"));
        Assert.That(best["step"]!.GetValue<long>(), Is.EqualTo(bestStep));
        var history = best["validation"]!["history"]!.AsArray();
        Assert.That(history.Select(h => h!["step"]!.GetValue<int>()), Is.EqualTo(records.Select(r => r.GetProperty("step").GetInt32())
            .Where(s => s <= bestStep)));
        Assert.That(best["validation"]!["best_step"]!.GetValue<int>(), Is.EqualTo(bestStep));
        for (int i = 0; i < history.Count; i++)
            Assert.That(history[i]!["valid_loss"]!.GetValue<double>(), Is.EqualTo(losses[i]).Within(1e-6));
        foreach (var step in new[] { 10, 20, 25 })
            Assert.That(File.ReadAllLines(Path.Combine(output, "valid", CheckpointStore.StepDirName(step), "eng_Latn-deu_Latn.hyp")),
                Has.Length.EqualTo(8));
    }

    [Test]
    public void PatienceStopsAfterThatManyValidationsWithoutImprovement()
    {
        // A learning rate too small to change an fp32 weight: every validation ties the first, which stays the best.
        var output = Train("patience", "--set", "train.max_steps=60", "--set", "train.eval_interval=5", "--set", "train.lr=1e-30",
            "--set", "train.patience=2", "--set", "train.save_interval=0");
        var records = ValidRecords(output);
        Assert.That(records.Select(r => r.GetProperty("valid_loss").GetDouble()).Distinct().Count(), Is.EqualTo(1));
        Assert.That(records.Select(r => r.GetProperty("step").GetInt32()), Is.EqualTo(new[] { 5, 10, 15 }));
        Assert.That(records[^1].GetProperty("since_best").GetInt32(), Is.EqualTo(2));
        Assert.That(File.ReadAllText(Path.Combine(output, "train.log")), Does.Contain("stopped early at step 15"));
        Assert.That(CheckpointStore.List(Path.Combine(output, "checkpoints")).Select(Path.GetFileName), Is.EqualTo(new[] { "step-0000015" }));
        Assert.That(CheckpointReader.ReadVerifiedManifest(Path.Combine(output, "checkpoints", "best"))["step"]!.GetValue<long>(), Is.EqualTo(5));
    }

    [Test]
    public void EmaFollowsTheRecurrenceAndIsWhatValidationAndEvalMeasure()
    {
        const double decay = 0.5;
        var output = Train("ema", "--set", "train.max_steps=3", "--set", "train.save_interval=1", "--set", "train.keep_last=5",
            "--set", $"train.ema_decay={decay}", "--set", "train.eval_interval=3", "--set", "train.warmup_steps=1");
        // ema_0 = initial weights; ema_t = d * ema_(t-1) + (1 - d) * w_t.
        var initial = Train("ema-initial", "--set", "train.max_steps=1", "--set", "train.lr=1e-30", "--set", "train.warmup_steps=1");
        var steps = new[] { 1, 2, 3 }.Select(s => Path.Combine(output, "checkpoints", CheckpointStore.StepDirName(s))).ToList();
        using var scope = NewDisposeScope();
        using var r0 = new SafeTensors.Reader(Path.Combine(initial, "checkpoints", CheckpointStore.StepDirName(1), CheckpointFormat.SharedFile));
        const string name = "encoder_layers.0.self_attn.q_proj.weight";
        var expected = r0.Read(name).to(ScalarType.Float64);
        foreach (var dir in steps)
        {
            using var r = new SafeTensors.Reader(Path.Combine(dir, CheckpointFormat.SharedFile));
            expected = expected * decay + r.Read(name).to(ScalarType.Float64) * (1 - decay);
        }
        using (var ema = new SafeTensors.Reader(Path.Combine(steps[^1], CheckpointFormat.EmaPrefix + CheckpointFormat.SharedFile)))
            Assert.That((ema.Read(name).to(ScalarType.Float64) - expected).abs().max().item<double>(), Is.LessThan(1e-6));

        // Validation ran on the average, and zcode eval (the same validator) measures the same loss with it.
        var record = ValidRecords(output).Single();
        Assert.That(record.GetProperty("weights").GetString(), Is.EqualTo("ema"));
        double trainNll = record.GetProperty("directions").GetProperty("eng_Latn-deu_Latn").GetProperty("nll").GetDouble();
        double Eval(string weights)
        {
            var json = Path.Combine(root, $"eval-{weights}.json");
            var (code, _, err) = CliRunner.Run("eval", "--task", "mt", "--checkpoint", steps[^1], "--pairs", "en-de", "--beam", "1",
                "--weights", weights, "--json", json, "--output-dir", Path.Combine(root, $"eval-{weights}"));
            Assert.That(code, Is.EqualTo(0), err);
            var report = JsonNode.Parse(File.ReadAllText(json))!;
            Assert.That(report["weights"]!.GetValue<string>(), Is.EqualTo(weights));
            return report["directions"]![0]!["nll"]!.GetValue<double>();
        }
        Assert.That(Eval("ema"), Is.EqualTo(trainNll).Within(1e-5));
        Assert.That(Math.Abs(Eval("raw") - trainNll), Is.GreaterThan(1e-4), "the trained weights measure differently");
    }

    [Test]
    public void WeightsEmaOnACheckpointWithoutAnAverageIsRefused()
    {
        var output = Train("raw", "--set", "train.max_steps=1");
        var (code, _, err) = CliRunner.Run("eval", "--task", "mt", "--checkpoint", output, "--weights", "ema", "--output-dir", Path.Combine(root, "e"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("holds no moving average").And.Contain("--weights raw"));
    }

    [Test]
    public void AverageIsTheElementwiseMean_LastAndBestPickCheckpoints()
    {
        var output = Train("avg", "--set", "train.max_steps=30", "--set", "train.save_interval=10", "--set", "train.eval_interval=10",
            "--set", "train.keep_best=1", "--set", "train.keep_last=1");
        // keep_last 1 keeps step 30; keep_best 1 keeps the best-validated one as well.
        var kept = CheckpointStore.List(Path.Combine(output, "checkpoints"));
        var records = ValidRecords(output);
        var bestStep = records.OrderBy(r => r.GetProperty("valid_loss").GetDouble()).First().GetProperty("step").GetInt32();
        Assert.That(kept.Select(d => CheckpointStore.StepOf(d)), Is.EquivalentTo(new long?[] { bestStep, 30 }.Distinct()));

        var mean = Path.Combine(root, "mean");
        var (code, _, err) = CliRunner.Run("average", "--run", output, "--last", $"{kept.Count}", "--out", mean);
        Assert.That(code, Is.EqualTo(0), err);
        using var scope = NewDisposeScope();
        const string name = "decoder_layers.0.self_attn.v_proj.weight";
        var sum = kept.Select(d => new SafeTensors.Reader(Path.Combine(d, CheckpointFormat.SharedFile)))
            .Select(r => { using (r) return r.Read(name).to(ScalarType.Float64); }).Aggregate((a, b) => a + b);
        using (var r = new SafeTensors.Reader(Path.Combine(mean, CheckpointFormat.SharedFile)))
            Assert.That((r.Read(name).to(ScalarType.Float64) - sum / kept.Count).abs().max().item<double>(), Is.LessThan(1e-6));
        var expertName = CheckpointFormat.ExpertTensor(3, "w1");
        var expertSum = kept.Select(d => new SafeTensors.Reader(Path.Combine(d, CheckpointFormat.ExpertFile(1))))
            .Select(r => { using (r) return r.Read(expertName).to(ScalarType.Float64); }).Aggregate((a, b) => a + b);
        using (var m = new SafeTensors.Reader(Path.Combine(mean, CheckpointFormat.ExpertFile(1))))
            Assert.That((m.Read(expertName).to(ScalarType.Float64) - expertSum / kept.Count).abs().max().item<double>(),
                Is.LessThan(1e-6), "experts are averaged by global id");
        Assert.That(CliRunner.Run("eval", "--task", "mt", "--checkpoint", mean, "--pairs", "en-de", "--beam", "1",
            "--output-dir", Path.Combine(root, "mean-eval")).Code, Is.EqualTo(0), "the average loads in eval");

        var best = Path.Combine(root, "best1");
        Assert.That(CliRunner.Run("average", "--run", output, "--best", "1", "--out", best).Code, Is.EqualTo(0));
        Assert.That(CheckpointReader.ReadVerifiedManifest(best)["averaged_from"]![0]!["step"]!.GetValue<long>(), Is.EqualTo(bestStep));
        var (tooMany, _, tooManyErr) = CliRunner.Run("average", "--run", output, "--best", "3", "--out", Path.Combine(root, "best3"));
        Assert.That(tooMany, Is.EqualTo(2));
        Assert.That(tooManyErr, Does.Contain("train.keep_best"));
    }

    [Test]
    public void TwoInProcessRanksValidateAsOneProcess()
    {
        var cfg = ConfigLoader.LoadDefault([
            .. Small(Path.Combine(root, "shards")), "train.max_steps=6", "model.dropout=0", "train.save_interval=0",
            "train.eval_interval=3", "train.log_interval=3",
        ]);
        var single = Path.Combine(root, "one");
        cfg.Train.GradAccumulation = 2;
        InProcessTraining.Run(cfg, 1, single);
        var two = Path.Combine(root, "two");
        cfg.Train.GradAccumulation = 1;
        InProcessTraining.Run(cfg, 2, two);
        var (a, b) = (ValidRecords(single), ValidRecords(two));
        Assert.That(b, Has.Count.EqualTo(a.Count).And.Count.EqualTo(2));
        for (int i = 0; i < a.Count; i++)
        {
            foreach (var d in a[i].GetProperty("directions").EnumerateObject())
            {
                var other = b[i].GetProperty("directions").GetProperty(d.Name);
                Assert.That(other.GetProperty("nll").GetDouble(), Is.EqualTo(d.Value.GetProperty("nll").GetDouble()).Within(1e-4), d.Name);
                Assert.That(other.GetProperty("chrf").GetDouble(), Is.EqualTo(d.Value.GetProperty("chrf").GetDouble()).Within(0.01), d.Name);
                Assert.That(other.GetProperty("sentences").GetInt32(), Is.EqualTo(8));
            }
            // The two ranks decoded different batches; the gathered hypotheses are one process's, in input order.
            var step = CheckpointStore.StepDirName(a[i].GetProperty("step").GetInt32());
            Assert.That(File.ReadAllLines(Path.Combine(two, "valid", step, "deu_Latn-eng_Latn.hyp")),
                Is.EqualTo(File.ReadAllLines(Path.Combine(single, "valid", step, "deu_Latn-eng_Latn.hyp"))));
        }
    }
}
