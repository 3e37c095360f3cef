using System.Text;

namespace ZCode.Evaluation.Metrics;

/// <summary>
/// sacreBLEU's <c>13a</c> tokenizer (mteval-v13a.pl): drop <c>&lt;skipped&gt;</c>, join "-\n" hyphenation, unescape
/// &amp;quot; &amp;amp; &amp;lt; &amp;gt;, pad the line with spaces, then the shared <see cref="MtevalRules"/>.
/// </summary>
public sealed class Tokenizer13a : ISacreTokenizer
{
    public string Name => "13a";

    public string Tokenize(string line)
    {
        line = line.Replace("<skipped>", "").Replace("-\n", "").Replace("\n", " ");
        if (line.Contains('&'))
            line = line.Replace("&quot;", "\"").Replace("&amp;", "&").Replace("&lt;", "<").Replace("&gt;", ">");
        return MtevalRules.Apply($" {line} ");
    }
}

/// <summary>
/// The language-dependent rules shared by 13a and zh (sacreBLEU's <c>TokenizerRegexp</c>), applied in order, each as
/// a left-to-right, non-overlapping substitution over code points:
/// 1. ASCII punctuation/symbols other than <c>' , - .</c> (and digits/letters) get spaces around them;
/// 2. <c>. ,</c> after a non-digit: "X." -> "X . "; 3. <c>. ,</c> before a non-digit: ".X" -> " . X";
/// 4. a dash after a digit: "9-" -> "9 - "; finally whitespace runs collapse to one space, no outer spaces.
/// </summary>
public static class MtevalRules
{
    public static string Apply(string line)
    {
        var cps = PyText.CodePoints(line);
        cps = Single(cps, IsSeparatedAscii);
        cps = Pair(cps, (a, b) => !IsDigit(a) && b is '.' or ',', spaceBefore: false);
        cps = Pair(cps, (a, b) => a is '.' or ',' && !IsDigit(b), spaceBefore: true);
        cps = Pair(cps, (a, b) => IsDigit(a) && b == '-', spaceBefore: false);
        return PyText.NormalizeSpaces(ToText(cps));
    }

    private static bool IsDigit(int cp) => cp is >= '0' and <= '9';

    // [\{-\~\[-\` -\&\(-\+\:-\@\/] of mteval: { | } ~  [ \ ] ^ _ `  space ! " # $ % &  ( ) * +  : ; < = > ? @  /
    private static bool IsSeparatedAscii(int cp) =>
        cp is >= 0x7B and <= 0x7E or >= 0x5B and <= 0x60 or >= 0x20 and <= 0x26 or >= 0x28 and <= 0x2B
            or >= 0x3A and <= 0x40 or 0x2F;

    /// <summary>Every code point matching <paramref name="match"/> becomes " c ".</summary>
    internal static int[] Single(int[] cps, Func<int, bool> match)
    {
        var result = new List<int>(cps.Length + 8);
        foreach (var c in cps)
        {
            if (match(c)) { result.Add(' '); result.Add(c); result.Add(' '); }
            else result.Add(c);
        }
        return result.ToArray();
    }

    /// <summary>
    /// Left-to-right non-overlapping two-code-point matches (as re.sub scans): "ab" becomes "a b " or, with
    /// <paramref name="spaceBefore"/>, " a b"; after a match the scan resumes after b.
    /// </summary>
    internal static int[] Pair(int[] cps, Func<int, int, bool> match, bool spaceBefore)
    {
        var result = new List<int>(cps.Length + 8);
        int i = 0;
        while (i < cps.Length)
        {
            if (i + 1 < cps.Length && match(cps[i], cps[i + 1]))
            {
                if (spaceBefore) result.Add(' ');
                result.Add(cps[i]);
                result.Add(' ');
                result.Add(cps[i + 1]);
                if (!spaceBefore) result.Add(' ');
                i += 2;
            }
            else result.Add(cps[i++]);
        }
        return result.ToArray();
    }

    internal static string ToText(IEnumerable<int> cps)
    {
        var sb = new StringBuilder();
        foreach (var c in cps) PyText.Append(sb, c);
        return sb.ToString();
    }
}
