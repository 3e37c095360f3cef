using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>
/// Writes step checkpoints under OUTPUT/checkpoints/step-NNNNNNN/ crash-safely: everything goes to a temporary
/// sibling directory, is fsynced, then renamed into place, and `latest` is replaced atomically. Keeps the last N.
/// </summary>
public sealed class CheckpointStore
{
    public const string ManifestFile = "manifest.json";
    public const string ModelFile = "model.bin";
    public const string OptimizerFile = "optimizer.bin";

    private readonly string root;
    private readonly int keepLast;

    public CheckpointStore(string outputDir, int keepLast)
    {
        root = Path.Combine(outputDir, "checkpoints");
        this.keepLast = Math.Max(1, keepLast);
    }

    public string Root => root;

    public static string StepDirName(long step) => $"step-{step:D7}";

    /// <summary>Saves model, optimizer and a manifest (with SHA-256 of each file); returns the final directory.</summary>
    public string Save(long step, nn.Module model, optim.Optimizer optimizer, JsonObject manifest)
    {
        Directory.CreateDirectory(root);
        var finalDir = Path.Combine(root, StepDirName(step));
        var tmpDir = Path.Combine(root, $".tmp-{StepDirName(step)}-{Environment.ProcessId}");
        if (Directory.Exists(tmpDir))
            Directory.Delete(tmpDir, recursive: true);
        Directory.CreateDirectory(tmpDir);

        model.save(Path.Combine(tmpDir, ModelFile));
        if (optimizer is OptimizerHelper helper)
            helper.save_state_dict(Path.Combine(tmpDir, OptimizerFile));

        var checksums = new JsonObject();
        foreach (var file in Directory.GetFiles(tmpDir).OrderBy(f => f, StringComparer.Ordinal))
            checksums[Path.GetFileName(file)] = Sha256(file);
        manifest["step"] = step;
        manifest["files"] = checksums;
        WriteDurably(Path.Combine(tmpDir, ManifestFile), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        foreach (var file in Directory.GetFiles(tmpDir))
            FsyncFile(file);

        if (Directory.Exists(finalDir))
            Directory.Delete(finalDir, recursive: true);
        Directory.Move(tmpDir, finalDir);
        WriteDurably(Path.Combine(root, ".latest.tmp"), StepDirName(step) + "\n");
        File.Move(Path.Combine(root, ".latest.tmp"), Path.Combine(root, "latest"), overwrite: true);
        Prune();
        return finalDir;
    }

    /// <summary>Step directories, oldest first.</summary>
    public IReadOnlyList<string> List() => !Directory.Exists(root)
        ? Array.Empty<string>()
        : Directory.GetDirectories(root, "step-*").OrderBy(d => d, StringComparer.Ordinal).ToList();

    private void Prune()
    {
        var dirs = List();
        for (int i = 0; i < dirs.Count - keepLast; i++)
            Directory.Delete(dirs[i], recursive: true);
    }

    private static string Sha256(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static void WriteDurably(string path, string text)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        using (var w = new StreamWriter(fs, leaveOpen: true))
            w.Write(text);
        fs.Flush(flushToDisk: true);
    }

    private static void FsyncFile(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        fs.Flush(flushToDisk: true);
    }
}
