namespace ZCode.Config;

/// <summary>The groups of rules <see cref="ConfigValidator.ValidateRun"/> applies beyond the value checks.</summary>
[Flags]
public enum RunChecks
{
    /// <summary>The files and languages of the data section: what <c>zcode data prepare</c> reads.</summary>
    Data = 1,
    /// <summary>Data, and the model and tasks against it: vocabulary size and tags of the SentencePiece model, task
    /// weights against the corpora, prepared corpora that kept no line.</summary>
    Training = 2 | Data,
    /// <summary><c>train.device</c> on this machine.</summary>
    Device = 4,
    /// <summary>Device, and the processes: launcher, backend, world size.</summary>
    Launch = 8 | Device,
    /// <summary>Everything <c>zcode train</c> rejects before it starts.</summary>
    All = Training | Launch,
}

public static partial class ConfigValidator
{
    /// <summary>
    /// Rejects what a command would reject later, before it starts or writes anything: the value checks, then per
    /// <paramref name="checks"/> the data files and languages, the model and tasks against the data, the device and the
    /// processes of <paramref name="environment"/> (default: <see cref="RunEnvironment.Current"/>). The first failure
    /// is a <see cref="UserInputException"/> "FILE:LINE:COL: key: problem; fix" at the key's line, or naming the --set
    /// override that set it.
    /// </summary>
    public static void ValidateRun(ZCodeConfig config, RunChecks checks, RunEnvironment? environment = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var check = Validate(config, config.Sources);
        if (checks.HasFlag(RunChecks.Data))
        {
            var spm = DataFiles(config, check);
            if (checks.HasFlag(RunChecks.Training))
                Training(config, spm, check);
        }
        if ((checks & RunChecks.Device) == 0)
            return;
        environment ??= RunEnvironment.Current();
        Device(config, environment, check);
        if (checks.HasFlag(RunChecks.Launch))
            Launch(config, environment, check);
    }
}
