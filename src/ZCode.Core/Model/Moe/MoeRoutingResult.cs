using static TorchSharp.torch;

namespace ZCode.Model.Moe;

/// <summary>
/// Output of <see cref="MoeRouting.Route"/>. Token-slot tensors have length N = S * k in slot order
/// "all first choices, then all second choices" (slot j*S + s is token s's (j+1)-th choice), as DeepSpeed.
/// Tensors belong to the caller's dispose scope; <see cref="Dispose"/> frees them early if wanted.
/// </summary>
public sealed class MoeRoutingResult : IDisposable
{
    /// <summary>[N] int64: the expert of each token-slot (also filled for masked tokens, which are not kept).</summary>
    public required Tensor ExpertIndex { get; init; }

    /// <summary>[N] int64: the token (row of the flattened input) of each slot.</summary>
    public required Tensor TokenIndex { get; init; }

    /// <summary>[N] int64: rank of the slot within its expert by priority (first choices before second
    /// choices); -1 for masked tokens. Kept slots have positions 0..C-1, unique per expert.</summary>
    public required Tensor Position { get; init; }

    /// <summary>[N] bool: real token and position &lt; capacity.</summary>
    public required Tensor Kept { get; init; }

    /// <summary>[N] fp32 combine weights (0 for slots not kept); differentiable w.r.t. the logits.</summary>
    public required Tensor Gate { get; init; }

    /// <summary>Scalar fp32, unweighted load-balancing loss E * sum_e f_e * P_e (first choices, before dropping).</summary>
    public required Tensor AuxLoss { get; init; }

    /// <summary>Scalar fp32 router z-loss: mean over real tokens of logsumexp(logits)^2.</summary>
    public required Tensor ZLoss { get; init; }

    /// <summary>Scalar fp32, detached: mean router entropy over real tokens (nats), for statistics.</summary>
    public required Tensor Entropy { get; init; }

    /// <summary>[E] int64: kept assignments per expert.</summary>
    public required Tensor TokensPerExpert { get; init; }

    /// <summary>[E] int64: real assignments per expert before capacity dropping.</summary>
    public required Tensor AssignedPerExpert { get; init; }

    private (long[] Kept, long Dropped, long Routed)? host;

    /// <summary>Managed copy of <see cref="TokensPerExpert"/>. The managed counts are read from the device on first
    /// use (one read for all three), so routing itself never waits for the device; read them before the tensors'
    /// dispose scope ends.</summary>
    public long[] TokensPerExpertCounts => Host().Kept;

    /// <summary>Real token-expert assignments dropped for lack of capacity.</summary>
    public long Dropped => Host().Dropped;

    /// <summary>Real (unmasked) tokens routed.</summary>
    public long RoutedTokens => Host().Routed;

    private (long[] Kept, long Dropped, long Routed) Host()
    {
        if (host is { } h) return h;
        long e = TokensPerExpert.shape[0];
        using var joined = cat([TokensPerExpert, AssignedPerExpert], 0);
        var both = ZCode.Runtime.HostTransfers.Read<long>(joined);
        var kept = both[..(int)e];
        long assigned = both[(int)e..].Sum();
        host = (kept, assigned - kept.Sum(), assigned / TopK);
        return host.Value;
    }

    /// <summary>The capacity C the routing was computed with.</summary>
    public required long Capacity { get; init; }

    /// <summary>Choices per token (k).</summary>
    public required int TopK { get; init; }

    public void Dispose()
    {
        ExpertIndex.Dispose();
        TokenIndex.Dispose();
        Position.Dispose();
        Kept.Dispose();
        Gate.Dispose();
        AuxLoss.Dispose();
        ZLoss.Dispose();
        Entropy.Dispose();
        TokensPerExpert.Dispose();
        AssignedPerExpert.Dispose();
    }
}
