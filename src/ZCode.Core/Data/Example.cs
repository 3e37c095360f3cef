namespace ZCode.Data;

/// <summary>Task names used in <see cref="Example.Task"/>.</summary>
public static class Tasks
{
    public const string Mt = "mt";
    public const string Dae = "dae";
}

/// <summary>
/// One training example as the model sees it. <see cref="Source"/> = target-language tag, source tokens, EOS;
/// <see cref="Target"/> = target tokens, EOS (the decoder input is BOS + Target[..^1], built by <see cref="Batch"/>).
/// </summary>
public sealed record Example(int[] Source, int[] Target, string SrcLang, string TgtLang, string Task)
{
    /// <summary>Padded length this example needs in a batch: max(source, target) length.</summary>
    public int Length => Math.Max(Source.Length, Target.Length);
}
