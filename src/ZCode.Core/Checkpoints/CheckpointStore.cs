using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp.Modules;
using ZCode.Model;
using Tensor = TorchSharp.torch.Tensor;

namespace ZCode.Checkpoints;

/// <summary>
/// Writes step checkpoints under OUTPUT/checkpoints/step-NNNNNNN/ in the v1 format (<see cref="CheckpointFormat"/>)
/// crash-safely: everything goes to step-NNNNNNN.tmp, files are fsynced as they are written, the manifest (with
/// size and SHA-256 of every file) comes last, then the directory is renamed into place and `latest` is replaced
/// atomically. A crash at any point leaves the previous checkpoints untouched; a half-written .tmp is never read.
/// Keeps the last train.keep_last checkpoints plus every one whose step is a multiple of train.keep_every.
/// </summary>
public sealed class CheckpointStore
{
    public const string ManifestFile = "manifest.json";
    public const string TmpSuffix = ".tmp";

    private readonly string root;
    private readonly int keepLast;
    private readonly int keepEvery;

    public CheckpointStore(string outputDir, int keepLast, int keepEvery = 0)
    {
        root = Path.Combine(outputDir, "checkpoints");
        this.keepLast = Math.Max(1, keepLast);
        this.keepEvery = Math.Max(0, keepEvery);
    }

    public string Root => root;

    /// <summary>Test hook for fault injection: called at each stage of <see cref="Save"/> with the stage's name
    /// (shared, experts, optimizer, manifest, rename, latest); throwing there simulates a crash at that point.</summary>
    internal static Action<string>? FaultHook;

    public static string StepDirName(long step) => $"step-{step:D7}";

    public static long? StepOf(string dir)
    {
        var name = Path.GetFileName(dir);
        return name.StartsWith("step-", StringComparison.Ordinal) && !name.EndsWith(TmpSuffix, StringComparison.Ordinal)
               && long.TryParse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : null;
    }

    /// <summary>Where the files of step <paramref name="step"/>'s checkpoint are written before the rename (other ranks
    /// write their shard files there while rank 0 saves).</summary>
    public string TmpDirOf(long step) => Path.Combine(root, StepDirName(step)) + TmpSuffix;

    /// <summary>Saves weights (shared + per-layer experts), optimizer state when given, and the manifest (to which
    /// step, format, layout and the file list are added). <paramref name="extraFiles"/>, when given, runs once the
    /// temporary directory exists and before anything else is written: it writes further files there (other ranks'
    /// shards) and records them in the manifest's file list, so they are checksummed and renamed with the rest.
    /// Returns the final directory.</summary>
    public string Save(long step, Seq2SeqTransformer model, AdamW? optimizer, JsonObject manifest,
        Action<string, JsonObject>? extraFiles = null)
    {
        Directory.CreateDirectory(root);
        var finalDir = Path.Combine(root, StepDirName(step));
        manifest["step"] = step;
        WriteDirectory(finalDir, model, optimizer, manifest, extraFiles);
        FaultHook?.Invoke("latest");
        WriteDurably(Path.Combine(root, ".latest.tmp"), StepDirName(step) + "\n");
        File.Move(Path.Combine(root, ".latest.tmp"), Path.Combine(root, "latest"), overwrite: true);
        FsyncDirectory(root);
        Prune();
        return finalDir;
    }

    /// <summary>
    /// Writes a complete checkpoint directory at <paramref name="finalDir"/> crash-safely (a .tmp sibling, fsync,
    /// manifest last, rename). Used for step checkpoints and for the outputs of aggregation and pruning.
    /// </summary>
    public static void WriteDirectory(string finalDir, Seq2SeqTransformer model, AdamW? optimizer, JsonObject manifest,
        Action<string, JsonObject>? extraFiles = null)
    {
        manifest["step"] ??= 0;
        var tmpDir = finalDir + TmpSuffix;
        if (Directory.Exists(tmpDir))
            Directory.Delete(tmpDir, recursive: true); // left by a crash: never complete, never read
        Directory.CreateDirectory(tmpDir);

        var files = new JsonObject();
        void Record(string name, WrittenFile w) => files[name] = FileEntry(w);
        extraFiles?.Invoke(tmpDir, files);

        var layers = CheckpointFormat.MoeLayers(model);
        var jobs = new List<(string File, List<(string, Tensor)> Tensors)>
        {
            (CheckpointFormat.SharedFile, CheckpointFormat.SharedTensors(model, layers)),
        };
        foreach (var layer in layers)
            jobs.Add((CheckpointFormat.ExpertFile(layer.Index), ExpertTensors(layer, p => CheckpointFormat.ExpertParameter(layer, p))));
        if (optimizer is not null)
            jobs.AddRange(OptimizerJobs(model, optimizer, layers));
        using (var temporaries = new DisposeList(jobs, model))
        {
            // Files are independent: writing them on two threads overlaps one file's hashing with another's I/O.
            var written = new WrittenFile[jobs.Count];
            try
            {
                System.Threading.Tasks.Parallel.For(0, jobs.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Clamp(Environment.ProcessorCount, 1, 4) },
                    i => written[i] = SafeTensors.Write(Path.Combine(tmpDir, jobs[i].File), jobs[i].Tensors));
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }
            for (int i = 0; i < jobs.Count; i++)
                Record(jobs[i].File, written[i]);
        }
        FaultHook?.Invoke("shared");
        FaultHook?.Invoke("experts");
        FaultHook?.Invoke("optimizer");

        manifest["format"] = CheckpointFormat.Version;
        manifest["moe_layers"] = new JsonArray(layers.Select(l => (JsonNode)new JsonObject
        {
            ["index"] = l.Index, ["module"] = l.Prefix, ["experts"] = l.Layer.Experts,
            ["file"] = CheckpointFormat.ExpertFile(l.Index),
        }).ToArray());
        if (optimizer is not null) manifest["optimizer"] = "adamw";
        manifest["files"] = files;
        WriteDurably(Path.Combine(tmpDir, ManifestFile), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        FsyncDirectory(tmpDir);
        FaultHook?.Invoke("manifest");

        // Never overwrite a checkpoint in place: an existing directory of this step (from a run that crashed after
        // it, so it is not the one being resumed) is moved aside first and removed only once the new one is in place.
        string? aside = null;
        if (Directory.Exists(finalDir))
        {
            aside = finalDir + ".old" + TmpSuffix;
            if (Directory.Exists(aside)) Directory.Delete(aside, recursive: true);
            Directory.Move(finalDir, aside);
        }
        FaultHook?.Invoke("rename");
        Directory.Move(tmpDir, finalDir);
        FsyncDirectory(Path.GetDirectoryName(finalDir)!);
        if (aside is not null) Directory.Delete(aside, recursive: true);
    }

    /// <summary>The manifest's record of one written file.</summary>
    public static JsonObject FileEntry(WrittenFile w) => new() { ["size"] = w.Size, ["sha256"] = w.Sha256 };

    private static List<(string, TorchSharp.torch.Tensor)> ExpertTensors(MoeLayerRef layer, Func<string, TorchSharp.torch.Tensor> stacked)
    {
        var list = new List<(string, TorchSharp.torch.Tensor)>();
        var byParam = CheckpointFormat.ExpertParams.ToDictionary(p => p, stacked);
        for (int e = 0; e < layer.Layer.Experts; e++)
            foreach (var p in CheckpointFormat.ExpertParams)
                list.Add((CheckpointFormat.ExpertTensor(e, p), byParam[p][e])); // [e] of a contiguous stack: a contiguous view
        return list;
    }

    private static IEnumerable<(string, List<(string, Tensor)>)> OptimizerJobs(Seq2SeqTransformer model, AdamW optimizer,
        IReadOnlyList<MoeLayerRef> layers)
    {
        var states = OptimizerStates.ByName(optimizer, model);
        var expertNames = CheckpointFormat.ExpertParameterNames(layers);
        var shared = new List<(string, Tensor)>();
        foreach (var (name, st) in states.Where(kv => !expertNames.Contains(kv.Key)))
        {
            shared.Add(($"{name}.exp_avg", st.exp_avg));
            shared.Add(($"{name}.exp_avg_sq", st.exp_avg_sq));
            shared.Add(($"{name}.step", TorchSharp.torch.tensor(st.step)));
        }
        yield return (CheckpointFormat.OptimizerSharedFile, shared);
        foreach (var layer in layers)
        {
            var list = new List<(string, Tensor)>();
            for (int e = 0; e < layer.Layer.Experts; e++)
                foreach (var p in CheckpointFormat.ExpertParams)
                {
                    var st = states[$"{layer.Prefix}.{p}"];
                    var key = CheckpointFormat.ExpertTensor(e, p);
                    list.Add(($"{key}.exp_avg", st.exp_avg[e]));
                    list.Add(($"{key}.exp_avg_sq", st.exp_avg_sq[e]));
                    list.Add(($"{key}.step", TorchSharp.torch.tensor(st.step)));
                }
            yield return (CheckpointFormat.OptimizerExpertFile(layer.Index), list);
        }
    }

    /// <summary>Disposes the views and step scalars made for writing, never the model's or optimizer's own tensors.</summary>
    private sealed class DisposeList(List<(string File, List<(string, Tensor)> Tensors)> jobs, Seq2SeqTransformer model) : IDisposable
    {
        public void Dispose()
        {
            var owned = model.state_dict().Values.Select(t => t.Handle).ToHashSet();
            foreach (var (_, tensors) in jobs)
                foreach (var (name, t) in tensors)
                    if (!owned.Contains(t.Handle) && (name.Contains("expert.") || name.EndsWith(".step", StringComparison.Ordinal)))
                        t.Dispose();
        }
    }

    /// <summary>Complete step directories (no .tmp), oldest first.</summary>
    public IReadOnlyList<string> List() => List(root);

    public static IReadOnlyList<string> List(string checkpointsRoot) => !Directory.Exists(checkpointsRoot)
        ? Array.Empty<string>()
        : Directory.GetDirectories(checkpointsRoot, "step-*").Where(d => StepOf(d) is not null)
            .OrderBy(d => StepOf(d)).ToList();

    /// <summary>
    /// The newest checkpoint under <paramref name="checkpointsRoot"/> whose files all match the manifest's
    /// checksums; each newer one that fails is reported through <paramref name="warn"/> and skipped (not deleted:
    /// a person may want to look at it). Null when there is none.
    /// </summary>
    public static string? FindLatestValid(string checkpointsRoot, Action<string> warn)
    {
        foreach (var dir in List(checkpointsRoot).Reverse())
        {
            try
            {
                CheckpointReader.ReadVerifiedManifest(dir);
                return dir;
            }
            catch (UserInputException e)
            {
                warn($"skipping invalid checkpoint {dir}: {e.Message}");
            }
        }
        return null;
    }

    private void Prune()
    {
        var dirs = List();
        for (int i = 0; i < dirs.Count - keepLast; i++)
        {
            if (keepEvery > 0 && StepOf(dirs[i]) is long s && s % keepEvery == 0)
                continue;
            Directory.Delete(dirs[i], recursive: true);
        }
    }

    private static void WriteDurably(string path, string text)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        using (var w = new StreamWriter(fs, leaveOpen: true))
            w.Write(text);
        fs.Flush(flushToDisk: true);
    }

    // A rename is only durable once the directory holding it is fsynced; .NET has no API for that, so on Unix
    // open the directory read-only and fsync it (best effort elsewhere).
    private static void FsyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return;
        int fd = open(dir, 0);
        if (fd < 0) return;
        fsync(fd);
        close(fd);
    }

    [DllImport("libc", SetLastError = true)] private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
    [DllImport("libc", SetLastError = true)] private static extern int fsync(int fd);
    [DllImport("libc", SetLastError = true)] private static extern int close(int fd);
}
