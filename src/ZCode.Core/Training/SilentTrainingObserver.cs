namespace ZCode.Training;

/// <summary>Observer of ranks other than 0: they show no progress (rank 0 reports the global figures).</summary>
public sealed class SilentTrainingObserver : ITrainingObserver
{
    public void OnStart(int startStep, int maxSteps) { }
    public void OnStep(StepMetrics metrics, bool logged) { }
    public void OnCheckpoint(int step, string directory) { }
    public void OnFinish(int step, bool interrupted) { }
}
