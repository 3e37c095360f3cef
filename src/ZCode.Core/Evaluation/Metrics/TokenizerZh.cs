using System.Text;

namespace ZCode.Evaluation.Metrics;

/// <summary>
/// sacreBLEU's <c>zh</c> tokenizer: strip the line, put spaces around every "Chinese" code point, then the 13a rules
/// (<see cref="MtevalRules"/>) without 13a's unescaping and space padding.
/// <para>The ranges are sacreBLEU's as it actually runs: its table writes two astral ranges as
/// <c>u'\u20000'</c>..<c>u'\u2a6d6'</c> and <c>u'\u2f800'</c>..<c>u'\u2fa1d'</c>, which Python reads as two-character
/// strings, so by string comparison they cover U+2001..U+2A6D (general punctuation, arrows, math symbols, ...) and
/// U+2F81..U+2FA1, and no astral ideograph. We reproduce that to get identical scores.</para>
/// </summary>
public sealed class TokenizerZh : ISacreTokenizer
{
    private static readonly (int Start, int End)[] Ranges =
    [
        (0x3400, 0x4DB5), (0x4E00, 0x9FA5), (0x9FA6, 0x9FBB), (0xF900, 0xFA2D), (0xFA30, 0xFA6A), (0xFA70, 0xFAD9),
        (0x2001, 0x2A6D), // sacreBLEU's '\u20000'..'\u2a6d6' (see the class summary)
        (0x2F81, 0x2FA1), // sacreBLEU's '\u2f800'..'\u2fa1d'
        (0xFF00, 0xFFEF), (0x2E80, 0x2EFF), (0x3000, 0x303F), (0x31C0, 0x31EF), (0x2F00, 0x2FDF), (0x2FF0, 0x2FFF),
        (0x3100, 0x312F), (0x31A0, 0x31BF), (0xFE10, 0xFE1F), (0xFE30, 0xFE4F), (0x2600, 0x26FF), (0x2700, 0x27BF),
        (0x3200, 0x32FF), (0x3300, 0x33FF),
    ];

    public string Name => "zh";

    /// <summary>Whether sacreBLEU's zh tokenizer splits <paramref name="cp"/> off as a character of its own.</summary>
    public static bool IsChineseChar(int cp)
    {
        foreach (var (start, end) in Ranges)
            if (cp >= start && cp <= end) return true;
        return false;
    }

    public string Tokenize(string line)
    {
        var sb = new StringBuilder(line.Length * 2);
        foreach (var cp in PyText.CodePoints(PyText.Strip(line)))
        {
            if (IsChineseChar(cp)) { sb.Append(' '); PyText.Append(sb, cp); sb.Append(' '); }
            else PyText.Append(sb, cp);
        }
        return MtevalRules.Apply(sb.ToString());
    }
}
