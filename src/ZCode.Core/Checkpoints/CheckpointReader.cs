using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ZCode.Config;
using ZCode.Model;

namespace ZCode.Checkpoints;

/// <summary>One file of a checkpoint checked against the manifest; <see cref="Problem"/> says what is wrong.</summary>
public sealed record FileCheck(string Name, long Size, bool Ok, string? Problem);

/// <summary>A checkpoint opened for use: its directory, manifest, the run's config and the model with its weights.</summary>
public sealed record LoadedCheckpoint(string Directory, JsonObject Manifest, ZCodeConfig Config, Seq2SeqTransformer Model, long Step,
    string Weights = "raw");

/// <summary>
/// Opens checkpoints written by <see cref="CheckpointStore"/>: resolves `latest` and run directories, verifies every
/// file against the manifest's size and SHA-256, rebuilds the model from the stored config and loads its weights
/// (all experts; <see cref="CheckpointLoader"/> loads subsets by global expert id).
/// </summary>
public static class CheckpointReader
{
    /// <summary>
    /// Accepts a step directory, `OUTPUT/checkpoints/latest`, `OUTPUT/checkpoints` or a run directory `OUTPUT`
    /// (the latter three mean the newest step named by `latest`).
    /// </summary>
    public static string ResolveDirectory(string path)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full) && Path.GetFileName(full) == "latest")
            return Path.Combine(Path.GetDirectoryName(full)!, File.ReadAllText(full).Trim());
        if (System.IO.Directory.Exists(full) && File.Exists(Path.Combine(full, CheckpointStore.ManifestFile)))
            return full;
        foreach (var root in new[] { full, Path.Combine(full, "checkpoints") })
        {
            var latest = Path.Combine(root, "latest");
            if (File.Exists(latest))
                return Path.Combine(root, File.ReadAllText(latest).Trim());
        }
        throw new UserInputException($"{path}: not a checkpoint (expected a step directory with {CheckpointStore.ManifestFile}, " +
                                     "a checkpoints/latest file, or a run directory)");
    }

    /// <summary>Reads and verifies the manifest and files; throws <see cref="UserInputException"/> naming the bad file.</summary>
    public static JsonObject ReadVerifiedManifest(string directory)
    {
        var manifest = ReadManifest(directory);
        if (CheckFiles(directory, manifest).FirstOrDefault(f => !f.Ok) is { } bad)
            throw new UserInputException(bad.Problem!);
        return manifest;
    }

    /// <summary>Reads the manifest without checking the files it lists.</summary>
    public static JsonObject ReadManifest(string directory)
    {
        var manifestPath = Path.Combine(directory, CheckpointStore.ManifestFile);
        if (!File.Exists(manifestPath))
            throw new UserInputException($"{manifestPath}: missing; the checkpoint is incomplete");
        JsonObject manifest;
        try
        {
            manifest = JsonNode.Parse(File.ReadAllText(manifestPath))?.AsObject()
                       ?? throw new UserInputException($"{manifestPath}: empty manifest");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new UserInputException($"{manifestPath}: corrupt manifest ({e.Message})");
        }
        if (manifest["files"] is not JsonObject)
            throw new UserInputException($"{manifestPath}: no file list; the checkpoint is incomplete");
        return manifest;
    }

    /// <summary>Checks every listed file's size and SHA-256 (all of them, so a report can name each bad one).</summary>
    public static IReadOnlyList<FileCheck> CheckFiles(string directory, JsonObject manifest)
    {
        var result = new List<FileCheck>();
        foreach (var (name, entry) in (JsonObject)manifest["files"]!)
        {
            var file = Path.Combine(directory, name);
            // v1 entries are {size, sha256}; v0 entries were the hash alone.
            var hash = entry is JsonObject o ? o["sha256"]?.GetValue<string>() : entry?.GetValue<string>();
            var size = entry is JsonObject o2 ? o2["size"]?.GetValue<long>() : null;
            if (!File.Exists(file))
            {
                result.Add(new FileCheck(name, size ?? 0, false, $"{file}: missing (listed in {CheckpointStore.ManifestFile})"));
                continue;
            }
            long actual = new FileInfo(file).Length;
            if (size is long expected && actual != expected)
            {
                result.Add(new FileCheck(name, actual, false, $"{file}: {actual} bytes, manifest says {expected}; the checkpoint is truncated"));
                continue;
            }
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            bool ok = string.Equals(Convert.ToHexStringLower(SHA256.HashData(stream)), hash, StringComparison.Ordinal);
            result.Add(new FileCheck(name, actual, ok, ok ? null : $"{file}: checksum mismatch; the checkpoint is corrupt"));
        }
        return result;
    }

    /// <summary>The run config stored in a manifest (YAML text; relative paths resolve against the stored base dir).</summary>
    public static ZCodeConfig ConfigOf(string directory, JsonObject manifest)
    {
        var yaml = manifest["config"]?.GetValue<string>()
                   ?? throw new UserInputException($"{Path.Combine(directory, CheckpointStore.ManifestFile)}: no config stored");
        var baseDir = manifest["config_base_dir"]?.GetValue<string>();
        return ConfigLoader.LoadText(yaml, Path.Combine(directory, CheckpointStore.ManifestFile), null, baseDir);
    }

    /// <summary>What <c>--weights</c> can name: the moving average when the checkpoint has one (auto), it (ema), or the
    /// trained weights (raw).</summary>
    public static readonly string[] WeightChoices = ["auto", "ema", "raw"];

    /// <summary>Opens a checkpoint (see <see cref="ResolveDirectory"/>) and returns its model in eval mode, with the weights
    /// <paramref name="weights"/> names (<see cref="WeightChoices"/>).</summary>
    public static LoadedCheckpoint Load(string path, string weights = "raw")
    {
        var directory = ResolveDirectory(path);
        var manifest = ReadVerifiedManifest(directory);
        var config = ConfigOf(directory, manifest);
        var padId = manifest["pad_id"]?.GetValue<int>() ?? 0;
        var model = new Seq2SeqTransformer(config.Model, padId);
        if (manifest["format"]?.GetValue<string>() != CheckpointFormat.Version)
            throw new UserInputException($"{Path.Combine(directory, CheckpointStore.ManifestFile)}: format " +
                                         $"'{manifest["format"]}' is not {CheckpointFormat.Version}; this version cannot read it");
        bool ema = weights switch
        {
            "raw" => false,
            "auto" => CheckpointLoader.HasEma(directory),
            "ema" => CheckpointLoader.HasEma(directory) ? true
                : throw new UserInputException($"{directory}: --weights ema, but the checkpoint holds no moving average (train with " +
                                               "train.ema_decay > 0); use --weights raw"),
            _ => throw new UserInputException($"--weights: must be one of {string.Join(", ", WeightChoices)}, got '{weights}'"),
        };
        CheckpointLoader.LoadWeights(directory, model, prefix: ema ? CheckpointFormat.EmaPrefix : "");
        model.eval();
        return new LoadedCheckpoint(directory, manifest, config, model, manifest["step"]?.GetValue<long>() ?? 0, ema ? "ema" : "raw");
    }
}
