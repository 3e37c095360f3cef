namespace ZCode.Evaluation.Metrics;

/// <summary>A sacreBLEU tokenizer: text in, space-separated tokens out; <see cref="Name"/> goes into the signature.</summary>
public interface ISacreTokenizer
{
    string Name { get; }
    string Tokenize(string line);
}

/// <summary>The tokenizers of sacreBLEU 2.x that need no external tools: 13a (default), intl, zh, char, none.</summary>
public static class SacreTokenizers
{
    public static readonly IReadOnlyList<string> Names = ["13a", "intl", "zh", "char", "none"];

    /// <summary>The tokenizer called <paramref name="name"/>; unknown names are a <see cref="UserInputException"/>.</summary>
    public static ISacreTokenizer Create(string name) => name switch
    {
        "13a" => new Tokenizer13a(),
        "intl" => new TokenizerIntl(),
        "zh" => new TokenizerZh(),
        "char" => new TokenizerChar(),
        "none" => new TokenizerNone(),
        _ => throw new UserInputException($"unknown tokenizer '{name}': use one of {string.Join(", ", Names)}"),
    };
}

/// <summary>No tokenization (sacreBLEU's <c>none</c>): BLEU then splits on whitespace only.</summary>
public sealed class TokenizerNone : ISacreTokenizer
{
    public string Name => "none";
    public string Tokenize(string line) => line;
}

/// <summary>sacreBLEU's <c>char</c>: every code point (spaces included) becomes a token.</summary>
public sealed class TokenizerChar : ISacreTokenizer
{
    public string Name => "char";

    public string Tokenize(string line)
    {
        var sb = new System.Text.StringBuilder(line.Length * 2);
        foreach (var cp in PyText.CodePoints(line))
        {
            if (sb.Length > 0) sb.Append(' ');
            PyText.Append(sb, cp);
        }
        return sb.ToString();
    }
}
