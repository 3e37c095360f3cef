using System.Globalization;
using System.Text;

namespace ZCode.Evaluation.Metrics;

/// <summary>
/// sacreBLEU's <c>intl</c> tokenizer (mteval-v14 international): punctuation (Unicode P*) is split off unless it sits
/// between digits on that side: (non-N)(P) -> "x p ", then (P)(non-N) -> " p x"; every symbol (S*) gets spaces
/// around it; whitespace is collapsed. Categories are taken per code point, so astral symbols (emoji) split too.
/// As in mteval-v14, the line is not padded, so "2019." at the end of a line stays one token.
/// </summary>
public sealed class TokenizerIntl : ISacreTokenizer
{
    public string Name => "intl";

    public string Tokenize(string line)
    {
        var cps = PyText.CodePoints(line);
        cps = MtevalRules.Pair(cps, (a, b) => !IsNumber(a) && IsPunctuation(b), spaceBefore: false);
        cps = MtevalRules.Pair(cps, (a, b) => IsPunctuation(a) && !IsNumber(b), spaceBefore: true);
        cps = MtevalRules.Single(cps, IsSymbol);
        return PyText.NormalizeSpaces(MtevalRules.ToText(cps));
    }

    private static UnicodeCategory Category(int cp) =>
        Rune.IsValid(cp) ? Rune.GetUnicodeCategory(new Rune(cp)) : UnicodeCategory.Surrogate;

    private static bool IsNumber(int cp) => Category(cp) is UnicodeCategory.DecimalDigitNumber
        or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    private static bool IsPunctuation(int cp) => Category(cp) is UnicodeCategory.ConnectorPunctuation
        or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
        or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
        or UnicodeCategory.OtherPunctuation;

    private static bool IsSymbol(int cp) => Category(cp) is UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol
        or UnicodeCategory.ModifierSymbol or UnicodeCategory.OtherSymbol;
}
