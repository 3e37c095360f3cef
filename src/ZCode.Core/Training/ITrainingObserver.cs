namespace ZCode.Training;

/// <summary>Receives training progress (the CLI renders it; tests may record it).</summary>
public interface ITrainingObserver
{
    void OnStart(int startStep, int maxSteps);
    void OnStep(StepMetrics metrics, bool logged);
    void OnCheckpoint(int step, string directory);
    void OnFinish(int step, bool interrupted);
}
