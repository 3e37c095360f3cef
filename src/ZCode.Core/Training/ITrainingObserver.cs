namespace ZCode.Training;

/// <summary>Receives training progress (the CLI renders it; tests may record it).</summary>
public interface ITrainingObserver
{
    void OnStart(int startStep, int maxSteps);
    void OnStep(StepMetrics metrics, bool logged);
    void OnCheckpoint(int step, string directory);
    /// <summary>A validation at <paramref name="step"/>; <paramref name="improved"/> when it is the best so far.</summary>
    void OnValidation(int step, ZCode.Evaluation.ValidationResult result, bool improved) { }
    void OnFinish(int step, bool interrupted);
}
