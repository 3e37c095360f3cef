// Times saving and loading a v1 checkpoint of a config's model (default configs/m3-base.yaml) with its AdamW
// state, and reports the process's peak resident memory. Run save and load as separate processes (see
// bench/checkpoint-io.sh) so each peak (VmHWM) belongs to one operation.
using System.Diagnostics;
using System.Text.Json.Nodes;
using TorchSharp;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Model;
using ZCode.Parallel;
using ZCode.Training.Optimization;

if (args.Length < 2 || args[0] is not ("save" or "load"))
{
    Console.Error.WriteLine("usage: CheckpointIo save|load DIR [CONFIG] [--weights-only]");
    return 2;
}
// Same allocator settings as the zcode CLI, so the peak memory is the one a training run sees when it saves.
ZCode.Runtime.NativeMemoryTuning.Apply();
var mode = args[0];
var dir = Path.GetFullPath(args[1]);
var configPath = args.Length > 2 && !args[2].StartsWith("--") ? args[2] : Path.Combine(RepositoryRoot(), "configs", "m3-base.yaml");
bool weightsOnly = args.Contains("--weights-only");

torch.set_num_threads(1);
var cfg = ConfigLoader.LoadFile(configPath);
long runtimeRss = Rss("VmRSS");
torch.manual_seed(1);
var model = new Seq2SeqTransformer(cfg.Model, 0);
// TorchSharp's AdamW allocates its state (moments, step) for every parameter up front, as a training
// checkpoint holds it.
using var layout = ParallelLayout.Single();
var opt = weightsOnly ? null : new AdamWOptimizer(model, cfg.Train, cfg.Parallel, layout);
GC.Collect();
long stateRss = Rss("VmRSS");
File.WriteAllText("/proc/self/clear_refs", "5"); // reset VmHWM: the peak below belongs to the save/load alone
var clock = Stopwatch.StartNew();
string stepDir;
if (mode == "save")
{
    if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    using var views = torch.NewDisposeScope();
    var manifest = new JsonObject { ["config"] = ConfigWriter.ToYaml(cfg) };
    opt?.Describe(manifest);
    stepDir = new CheckpointStore(dir, keepLast: 1).Save(1, model, manifest, extraFiles: opt?.StateFiles(true, true));
}
else
{
    stepDir = CheckpointReader.ResolveDirectory(dir);
    var manifest = CheckpointReader.ReadVerifiedManifest(stepDir); // reads every byte once for SHA-256
    CheckpointLoader.LoadWeights(stepDir, model);
    opt?.Load(stepDir, manifest);
}
double seconds = clock.Elapsed.TotalSeconds;
long bytes = Directory.GetFiles(stepDir).Sum(f => new FileInfo(f).Length);
long peak = Rss("VmHWM");
Console.WriteLine(new JsonObject
{
    ["op"] = mode, ["dir"] = stepDir, ["config"] = Path.GetFileName(configPath), ["optimizer_state"] = opt is not null,
    ["params"] = model.parameters().Sum(p => p.numel()), ["checkpoint_mb"] = Math.Round(bytes / 1e6, 1),
    ["seconds"] = Math.Round(seconds, 2), ["mb_per_s"] = Math.Round(bytes / 1e6 / seconds, 0),
    ["runtime_rss_mb"] = runtimeRss / 1_000_000, ["rss_with_state_mb"] = stateRss / 1_000_000, ["peak_rss_mb"] = peak / 1_000_000,
    // Peak memory of the process during the operation (model, optimizer state and runtime included) per checkpoint byte.
    ["peak_rss_per_ckpt_byte"] = Math.Round((double)peak / bytes, 3),
    // Extra memory the save/load itself added on top of the live model and optimizer state.
    ["peak_over_state_mb"] = (peak - stateRss) / 1_000_000,
}.ToJsonString());
return 0;

static long Rss(string field)
{
    foreach (var line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith(field + ":"))
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    return 0;
}

static string RepositoryRoot()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "ZCode.Trainer.sln"))) return d.FullName;
    return Directory.GetCurrentDirectory();
}
