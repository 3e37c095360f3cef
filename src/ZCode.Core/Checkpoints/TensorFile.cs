using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>One safetensors file of a checkpoint: its name in the step directory and its tensors by name.</summary>
public sealed record TensorFile(string Name, IReadOnlyList<(string Name, Tensor Tensor)> Tensors);
