using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// A padded batch in row-major arrays: Source [Rows, SourceLength], TargetIn/TargetOut [Rows, TargetLength].
/// Plain arrays so batches can be built off the training thread; tensors are made inside the step's scope.
/// </summary>
public sealed record TrainingBatch(
    long[] Source, long[] TargetIn, long[] TargetOut, int Rows, int SourceLength, int TargetLength,
    long SourceTokens, long TargetTokens, string Task)
{
    public Tensor SourceTensor(Device device) => tensor(Source, [Rows, SourceLength], device: device);
    public Tensor TargetInTensor(Device device) => tensor(TargetIn, [Rows, TargetLength], device: device);
    public Tensor TargetOutTensor(Device device) => tensor(TargetOut, [Rows, TargetLength], device: device);
}
