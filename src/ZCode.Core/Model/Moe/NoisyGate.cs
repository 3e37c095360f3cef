namespace ZCode.Model.Moe;

/// <summary>
/// Router noise in training (config key <c>model.moe.noisy_gate</c>), DeepSpeed's <c>noisy_gate_policy</c>.
/// Evaluation never adds noise (docs/ARCHITECTURE.md §5, determinism).
/// </summary>
public enum NoisyGate
{
    /// <summary>No noise.</summary>
    None,

    /// <summary>Multiply the router input by U(1 - eps, 1 + eps), eps = <c>model.moe.jitter</c> (DeepSpeed <c>Jitter</c>,
    /// from Switch Transformer).</summary>
    Jitter,

    /// <summary>Add Gumbel(0, 1) noise to the logits when choosing experts; the gate weights stay the softmax of the
    /// clean logits. Top-1: the (only) choice, as DeepSpeed's <c>RSample</c>; top-2: the second choice, as DeepSpeed's
    /// <c>top2_2nd_expert_sampling</c> (DeepSpeed's top-2 gate ignores <c>RSample</c> and samples the second expert).</summary>
    RSample,
}

/// <summary>Parsing of the <c>noisy_gate</c> config string.</summary>
public static class NoisyGateNames
{
    /// <exception cref="ArgumentException">Not none, jitter or rsample.</exception>
    public static NoisyGate Parse(string value) => value.Trim().ToLowerInvariant() switch
    {
        "none" => NoisyGate.None,
        "jitter" => NoisyGate.Jitter,
        "rsample" => NoisyGate.RSample,
        _ => throw new ArgumentException($"noisy_gate must be none, jitter or rsample, not '{value}'", nameof(value)),
    };
}
