namespace ZCode.Training;

/// <summary>What one optimizer step reports (a logged step: one line of metrics.jsonl). Values read from the device
/// (losses, grad norm, expert statistics) are only filled on logged steps and are NaN or empty otherwise.</summary>
public sealed class StepMetrics
{
    public int Step { get; init; }
    /// <summary>Whether this is a logged step (its device values were read).</summary>
    public bool Logged { get; init; } = true;
    public int MaxSteps { get; init; }
    /// <summary>Label-smoothed cross entropy per target token (nats).</summary>
    public double Loss { get; init; }
    /// <summary>Unsmoothed negative log-likelihood per target token (nats).</summary>
    public double NllLoss { get; init; }
    public double Lr { get; init; }
    /// <summary>Target tokens in this step.</summary>
    public long Tokens { get; init; }
    public long TotalTokens { get; init; }
    public double TokensPerSecond { get; init; }
    public double AuxLoss { get; init; }
    public double ZLoss { get; init; }
    public double GradNorm { get; init; }
    public double DroppedFraction { get; set; } = double.NaN;
    /// <summary>Per MoE layer (encoder then decoder), fraction of kept assignments per expert.</summary>
    public double[][] ExpertLoad { get; set; } = [];
    /// <summary>Per MoE layer, mean router entropy (nats) over the log interval; set on logged steps.</summary>
    public double[] RouterEntropy { get; set; } = [];
    /// <summary>Per target language, per MoE layer, fraction of routed assignments per expert over the log interval.</summary>
    public Dictionary<string, double[][]> ExpertUsageByLang { get; set; } = new();
    /// <summary>Per MoE layer, max/mean routed assignments per expert over the log interval (1 = balanced).</summary>
    public double[] LoadImbalance { get; set; } = [];
    public double StepSeconds { get; init; }
    /// <summary>Seconds of this step spent waiting for the batch.</summary>
    public double DataWaitSeconds { get; init; }
    public double ElapsedSeconds { get; init; }
    /// <summary>Unsmoothed NLL per target token of each task in this step (metrics.jsonl: loss_mt, loss_dae).</summary>
    public IReadOnlyDictionary<string, double> LossByTask { get; init; } = new Dictionary<string, double>();
    /// <summary>Non-pad source and target tokens per language in this step.</summary>
    public IReadOnlyDictionary<string, long> TokensByLang { get; init; } = new Dictionary<string, long>();
    /// <summary>Bytes of optimizer state (AdamW moments, plus offloaded master weights) held by the logging rank.</summary>
    public long OptimizerStateBytes { get; init; }
}
