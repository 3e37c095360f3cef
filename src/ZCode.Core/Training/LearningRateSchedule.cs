using ZCode.Config;

namespace ZCode.Training;

/// <summary>Learning rate at a step: linear warmup, then inverse-sqrt (fairseq), linear decay to 0, or constant.</summary>
public static class LearningRateSchedule
{
    /// <param name="step">1-based optimizer step.</param>
    public static double At(TrainConfig t, int step)
    {
        step = Math.Max(1, step);
        int warm = Math.Max(0, t.WarmupSteps);
        if (warm > 0 && step <= warm)
            return t.Lr * step / warm;
        return t.Schedule switch
        {
            "inverse_sqrt" => warm > 0 ? t.Lr * Math.Sqrt((double)warm / step) : t.Lr / Math.Sqrt(step),
            "linear" => t.Lr * Math.Max(0.0, (double)(t.MaxSteps - step) / Math.Max(1, t.MaxSteps - warm)),
            "constant" => t.Lr,
            _ => throw new ArgumentException($"unknown schedule '{t.Schedule}'"),
        };
    }
}
