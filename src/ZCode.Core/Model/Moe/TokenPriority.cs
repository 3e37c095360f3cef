namespace ZCode.Model.Moe;

/// <summary>
/// Which assignments an overflowing expert keeps (config key <c>model.moe.token_priority</c>).
/// In every mode a token's first choices queue ahead of all second choices of the same expert
/// (DeepSpeed top-2: <c>locations2 += sum(mask1)</c>); the mode orders assignments within one choice rank.
/// </summary>
public enum TokenPriority
{
    /// <summary>Earlier position in the flattened batch wins; later tokens are dropped first.</summary>
    Order,

    /// <summary>Random Token Selection (Z-code M3, DeepSpeed <c>use_rts</c>): uniform random priority,
    /// so every position is equally likely to be dropped.</summary>
    Random,

    /// <summary>Higher router probability of the chosen expert wins (ties: earlier position).</summary>
    Score,
}

/// <summary>Parsing of the <c>token_priority</c> config string.</summary>
public static class TokenPriorityNames
{
    /// <summary>Parses "order", "random" or "score" (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Any other value.</exception>
    public static TokenPriority Parse(string value) => value.Trim().ToLowerInvariant() switch
    {
        "order" => TokenPriority.Order,
        "random" => TokenPriority.Random,
        "score" => TokenPriority.Score,
        _ => throw new ArgumentException(
            $"token_priority must be order, random or score, not '{value}'", nameof(value)),
    };
}
