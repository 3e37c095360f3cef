using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Model;
using ZCode.Parallel;
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

    /// <summary>Saves weights (shared + per-layer experts), the given <paramref name="extraFiles"/> (optimizer state),
    /// and the manifest (to which step, format, layout and the file list are added). Returns the final directory. With
    /// a <paramref name="group"/> this is collective: every rank writes its part and its own extra files (see
    /// <see cref="CheckpointGroup"/>), the lead the rest.</summary>
    /// <param name="alsoKeep">Steps whose checkpoints pruning keeps too (the best validated ones).</param>
    public string Save(long step, Seq2SeqTransformer model, JsonObject manifest, CheckpointGroup? group = null,
        IReadOnlyList<TensorFile>? extraFiles = null, IReadOnlySet<long>? alsoKeep = null)
    {
        bool lead = group?.IsLead ?? true;
        if (lead) Directory.CreateDirectory(root);
        var finalDir = Path.Combine(root, StepDirName(step));
        manifest["step"] = step;
        WriteDirectory(finalDir, model, manifest, group, extraFiles);
        if (lead)
        {
            FaultHook?.Invoke("latest");
            WriteDurably(Path.Combine(root, ".latest.tmp"), StepDirName(step) + "\n");
            File.Move(Path.Combine(root, ".latest.tmp"), Path.Combine(root, "latest"), overwrite: true);
            FsyncDirectory(root);
            Prune(alsoKeep);
        }
        group?.Comm.Barrier(); // nobody reads `latest` or starts the next save before the lead is done
        return finalDir;
    }

    /// <summary>
    /// Writes a complete checkpoint directory at <paramref name="finalDir"/> crash-safely (a .tmp sibling, fsync,
    /// manifest last, rename). Used for step checkpoints and for the outputs of aggregation and pruning. With a
    /// <paramref name="group"/> it is collective over the group's ranks, which write their own files into the same
    /// .tmp directory; their names, sizes and checksums are gathered to the lead for the manifest.
    /// <paramref name="extraFiles"/> are further files this process writes (names unique across the group).
    /// </summary>
    public static void WriteDirectory(string finalDir, Seq2SeqTransformer model, JsonObject manifest,
        CheckpointGroup? group = null, IReadOnlyList<TensorFile>? extraFiles = null)
    {
        bool lead = group?.IsLead ?? true;
        var tmpDir = finalDir + TmpSuffix;
        var layers = CheckpointFormat.MoeLayers(model);
        // The per-expert views made for writing die with this scope; the model's own tensors were made outside it.
        using var views = TorchSharp.torch.NewDisposeScope();
        // The model files this process writes (all of them in a single process, its share in a group), then its extras.
        var jobs = WeightFiles(model, group?.WritesShared ?? true, group?.WritesExperts ?? true).Concat(extraFiles ?? []).ToList();

        // Plans first: two ranks writing one file name (a wrong layout) would corrupt it, and a checkpoint missing an
        // expert block could never be loaded; both are refused before anything is written.
        var plans = Gather(group, new JsonObject
        {
            ["files"] = new JsonArray(jobs.Select(j => (JsonNode)j.Name).ToArray()),
            ["experts"] = new JsonArray(group is null || group.WritesExperts
                ? layers.Select(l => (JsonNode)new JsonArray(l.Layer.FirstExpert, l.Layer.LocalExperts)).ToArray() : []),
        });
        CheckPlans(plans, layers, finalDir);

        if (lead)
        {
            manifest["step"] ??= 0;
            if (Directory.Exists(tmpDir))
                Directory.Delete(tmpDir, recursive: true); // left by a crash: never complete, never read
            Directory.CreateDirectory(tmpDir);
        }
        group?.Comm.Barrier();

        var mine = new JsonObject();
        string? error = null;
        try
        {
            // Files are independent: writing them on two threads overlaps one file's hashing with another's I/O.
            var written = new WrittenFile[jobs.Count];
            try
            {
                System.Threading.Tasks.Parallel.For(0, jobs.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Clamp(Environment.ProcessorCount, 1, 4) },
                    i => written[i] = SafeTensors.Write(Path.Combine(tmpDir, jobs[i].Name), jobs[i].Tensors));
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }
            for (int i = 0; i < jobs.Count; i++)
                mine[jobs[i].Name] = new JsonObject { ["size"] = written[i].Size, ["sha256"] = written[i].Sha256 };
        }
        catch (Exception e) when (group is not null)
        {
            error = $"rank {group.Comm.Rank}: {e.Message}"; // reported to every rank below instead of leaving them waiting
        }
        var results = Gather(group, new JsonObject { ["written"] = mine, ["error"] = error });
        if (results.Select(r => r["error"]?.GetValue<string>()).FirstOrDefault(e => e is not null) is { } failed)
            throw new IOException($"{finalDir}: checkpoint not written: {failed}");

        if (lead)
        {
            var files = new JsonObject();
            foreach (var r in results)
                foreach (var (name, entry) in r["written"]!.AsObject())
                    files[name] = entry!.DeepClone();
            FaultHook?.Invoke("shared");
            FaultHook?.Invoke("experts");
            FaultHook?.Invoke("optimizer");

            manifest["format"] = CheckpointFormat.Version;
            manifest["moe_layers"] = new JsonArray(layers.Select(l =>
            {
                var entry = new JsonObject { ["index"] = l.Index, ["module"] = l.Prefix, ["experts"] = l.Layer.Experts };
                var names = files.Select(f => f.Key).Where(n => CheckpointFormat.IsExpertFileOf(n, l.Index))
                    .Order(StringComparer.Ordinal).ToList();
                if (names.Count == 1) entry["file"] = names[0];
                else entry["files"] = new JsonArray(names.Select(n => (JsonNode)n).ToArray());
                return (JsonNode)entry;
            }).ToArray());
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
        group?.Comm.Barrier();
    }

    /// <summary>
    /// The weight files of <paramref name="model"/> (the shared one and the experts' by global id): with
    /// <paramref name="prefix"/> and <paramref name="weights"/> (parameter name to tensor) those of a second set of
    /// weights with the model's names, e.g. <see cref="CheckpointFormat.EmaPrefix"/> and the moving average; buffers are
    /// the model's. Views, in the caller's dispose scope.
    /// </summary>
    public static List<TensorFile> WeightFiles(Seq2SeqTransformer model, bool writesShared, bool writesExperts, string prefix = "",
        IReadOnlyDictionary<string, Tensor>? weights = null)
    {
        var layers = CheckpointFormat.MoeLayers(model);
        Tensor Of(string name, Tensor own) => weights is not null && weights.TryGetValue(name, out var w) ? w : own;
        var jobs = new List<TensorFile>();
        if (writesShared)
            jobs.Add(new TensorFile(prefix + CheckpointFormat.SharedFile,
                CheckpointFormat.SharedTensors(model, layers).Select(t => (t.Name, Of(t.Name, t.Tensor))).ToList()));
        if (writesExperts)
            foreach (var layer in layers)
            {
                var l = layer.Layer;
                jobs.Add(new TensorFile(prefix + CheckpointFormat.ExpertFile(layer.Index, l.FirstExpert, l.LocalExperts, l.Experts),
                    ExpertTensors(layer, p => Of($"{layer.Prefix}.{p}", CheckpointFormat.ExpertParameter(layer, p)))));
            }
        return jobs;
    }

    /// <summary>Every rank's <paramref name="mine"/> (just it, without a group).</summary>
    private static JsonObject[] Gather(CheckpointGroup? group, JsonObject mine) => group is null
        ? [mine]
        : StringExchange.AllGather(group.Comm, mine.ToJsonString()).Select(t => JsonNode.Parse(t)!.AsObject()).ToArray();

    /// <summary>Refuses plans in which two ranks write one file, or the expert blocks do not cover 0..E-1 of every
    /// layer exactly once. Every rank sees the same plans, so every rank throws the same error.</summary>
    private static void CheckPlans(JsonObject[] plans, IReadOnlyList<MoeLayerRef> layers, string finalDir)
    {
        var owner = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int r = 0; r < plans.Length; r++)
            foreach (var f in plans[r]["files"]!.AsArray())
                if (!owner.TryAdd(f!.GetValue<string>(), r))
                    throw new InvalidOperationException($"{finalDir}: ranks {owner[f.GetValue<string>()]} and {r} would both write " +
                                                        $"{f}; the checkpoint group's writer flags do not match the parallel layout");
        foreach (var layer in layers)
        {
            var covered = new int[layer.Layer.Experts];
            foreach (var plan in plans)
                if (plan["experts"]!.AsArray() is { Count: > 0 } blocks)
                {
                    var block = blocks[layer.Index]!.AsArray();
                    int first = block[0]!.GetValue<int>(), count = block[1]!.GetValue<int>();
                    for (int e = first; e < first + count; e++) covered[e]++;
                }
            int bad = Array.FindIndex(covered, c => c != 1);
            if (bad >= 0)
                throw new InvalidOperationException($"{finalDir}: expert {bad} of MoE layer {layer.Index} would be written " +
                                                    $"{covered[bad]} times; exactly one rank per expert block must write experts");
        }
    }

    private static List<(string, TorchSharp.torch.Tensor)> ExpertTensors(MoeLayerRef layer, Func<string, TorchSharp.torch.Tensor> stacked)
    {
        var list = new List<(string, TorchSharp.torch.Tensor)>();
        var byParam = CheckpointFormat.ExpertParams.ToDictionary(p => p, stacked);
        for (int j = 0; j < layer.Layer.LocalExperts; j++)
            foreach (var p in CheckpointFormat.ExpertParams)
                list.Add((CheckpointFormat.ExpertTensor(layer.Layer.FirstExpert + j, p), byParam[p][j])); // [j] of a contiguous stack: a contiguous view
        return list;
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

    /// <summary>Writes a checkpoint of <paramref name="step"/> to checkpoints/<paramref name="name"/> (e.g. best), replacing
    /// the one there crash-safely; it is never pruned and never resumed from by <c>--resume auto</c>.</summary>
    public string SaveAs(string name, long step, Seq2SeqTransformer model, JsonObject manifest, CheckpointGroup? group = null,
        IReadOnlyList<TensorFile>? extraFiles = null)
    {
        if (group?.IsLead ?? true) Directory.CreateDirectory(root);
        var dir = Path.Combine(root, name);
        manifest["step"] = step;
        WriteDirectory(dir, model, manifest, group, extraFiles);
        return dir;
    }

    private void Prune(IReadOnlySet<long>? alsoKeep)
    {
        var dirs = List();
        for (int i = 0; i < dirs.Count - keepLast; i++)
        {
            if (StepOf(dirs[i]) is long s && ((keepEvery > 0 && s % keepEvery == 0) || alsoKeep?.Contains(s) == true))
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
