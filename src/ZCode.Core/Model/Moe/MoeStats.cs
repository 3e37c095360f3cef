namespace ZCode.Model.Moe;

/// <summary>
/// Managed per-forward routing statistics of one MoE layer (no tensors, safe to keep across steps).
/// </summary>
/// <param name="TokensPerExpert">Kept assignments per expert (after capacity dropping).</param>
/// <param name="Routed">Real (unmasked) tokens routed in this forward.</param>
/// <param name="Dropped">Real token-expert assignments dropped because an expert was full.</param>
/// <param name="DroppedFraction">Dropped / (Routed * top_k); 0 when nothing was routed.</param>
public sealed record MoeStats(long[] TokensPerExpert, long Routed, long Dropped, double DroppedFraction);
