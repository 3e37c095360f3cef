using ZCode.Checkpoints;
using ZCode.Config;

namespace ZCode.Training;

/// <summary>Where a run starts: a fresh model, a checkpoint to resume exactly, or weights to start from.</summary>
public sealed record StartPlan(string? ResumeFrom, string? InitFrom);

/// <summary>How a run starts (`zcode train --resume` / `--init-from`), resolved against the output directory.</summary>
/// <param name="Resume">never (refuse a directory that holds checkpoints) | auto (the newest valid one there, else
/// fresh) | a checkpoint path.</param>
/// <param name="InitFrom">A checkpoint whose weights and model config start a new run (step 0, fresh optimizer).</param>
public sealed record RunStart(string Resume = "never", string? InitFrom = null)
{
    /// <summary>For --init-from, makes the model section of <paramref name="cfg"/> the checkpoint's (an aggregated or
    /// pruned model has a different expert count than any config file), before the config is validated.</summary>
    public void AdoptModel(ZCodeConfig cfg)
    {
        if (InitFrom is null)
            return;
        if (Resume != "never")
            throw new UserInputException("--init-from starts a new run; it cannot be combined with --resume");
        var dir = CheckpointReader.ResolveDirectory(InitFrom);
        cfg.ReplaceModel(CheckpointReader.ConfigOf(dir, CheckpointReader.ReadVerifiedManifest(dir)).Model, $"--init-from {dir}");
    }

    /// <summary>Decides the start against what <paramref name="outputDir"/> already holds.</summary>
    public StartPlan Resolve(string outputDir, Action<string> warn)
    {
        var root = Path.Combine(outputDir, "checkpoints");
        if (InitFrom is not null)
        {
            RefuseExisting(outputDir, root);
            return new StartPlan(null, CheckpointReader.ResolveDirectory(InitFrom));
        }
        switch (Resume)
        {
            case "never":
                RefuseExisting(outputDir, root);
                return new StartPlan(null, null);
            case "auto":
                var latest = CheckpointStore.FindLatestValid(root, warn);
                if (latest is null && CheckpointStore.List(root).Count > 0)
                    throw new UserInputException($"{root}: no checkpoint there is valid (see warnings); remove them or choose another --output");
                return new StartPlan(latest, null);
            default:
                var explicitDir = CheckpointReader.ResolveDirectory(Resume);
                CheckpointReader.ReadVerifiedManifest(explicitDir);
                return new StartPlan(explicitDir, null);
        }
    }

    private static void RefuseExisting(string outputDir, string root)
    {
        if (CheckpointStore.List(root).Count > 0)
            throw new UserInputException($"{outputDir}: already holds checkpoints from an earlier run; continue it with --resume auto, " +
                                         "or choose another --output");
    }
}
