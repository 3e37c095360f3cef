using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Model.Moe;

/// <summary>How an MoE layer runs its experts: chosen once for the model where it is built, never inside a forward.</summary>
public enum MoeExecution
{
    /// <summary>Exactly the kept token-slots, one matmul pair per expert (<see cref="MoeLayer.RunExperts"/>): the least
    /// work, but the per-expert split sizes are read on the host, so only for a layer holding all its experts on a
    /// device whose memory the host reads for free (CPU).</summary>
    Packed,

    /// <summary>A fixed-size [E, C, d] buffer and two batched matmuls (<see cref="MoeLayer.ExchangeAndRunExperts"/>):
    /// nothing read back, so accelerators never wait; the path of expert parallelism, whose all-to-alls exchange
    /// equal blocks.</summary>
    Padded,
}

/// <summary>Picks the <see cref="MoeExecution"/> for the device a model runs on.</summary>
public static class MoeExecutionPath
{
    /// <summary>Packed on CPU when every layer holds all its experts; padded on accelerators and under expert parallelism.</summary>
    public static MoeExecution For(Device device, bool expertParallel = false)
        => device.type == DeviceType.CPU && !expertParallel ? MoeExecution.Packed : MoeExecution.Padded;
}
