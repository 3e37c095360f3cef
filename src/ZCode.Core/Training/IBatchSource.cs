using System.Text.Json.Nodes;

namespace ZCode.Training;

/// <summary>An endless, deterministic stream of training batches whose position can be saved and restored.</summary>
public interface IBatchSource
{
    TrainingBatch Next();

    /// <summary>Serializable stream position (RNG state and counters), stored in checkpoints.</summary>
    JsonNode SaveState();

    void RestoreState(JsonNode state);
}
