using System.Globalization;
using System.Text;

namespace ZCode.Evaluation.Metrics;

/// <summary>
/// The few Python string semantics sacreBLEU relies on, reproduced exactly: <c>str.split()</c>/<c>strip()</c> on
/// Python's whitespace set, iteration by code point (not UTF-16 unit), <c>str.lower()</c>, and <c>f"{x:.Nf}"</c>.
/// </summary>
public static class PyText
{
    /// <summary>Python's <c>str.isspace()</c> for one code point (includes U+001C..U+001F, unlike .NET).</summary>
    public static bool IsSpace(int cp) => cp switch
    {
        >= 0x09 and <= 0x0D => true,
        >= 0x1C and <= 0x20 => true,
        0x85 or 0xA0 or 0x1680 or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        >= 0x2000 and <= 0x200A => true,
        _ => false,
    };

    /// <summary><c>str.split()</c>: runs of whitespace separate, no empty pieces.</summary>
    public static List<string> Split(string s)
    {
        var parts = new List<string>();
        int start = -1;
        for (int i = 0; i < s.Length; i++)
        {
            // Python's whitespace is all in the BMP, so a surrogate is never a separator.
            if (IsSpace(s[i]))
            {
                if (start >= 0) parts.Add(s[start..i]);
                start = -1;
            }
            else if (start < 0) start = i;
        }
        if (start >= 0) parts.Add(s[start..]);
        return parts;
    }

    /// <summary><c>' '.join(s.split())</c>.</summary>
    public static string NormalizeSpaces(string s) => string.Join(' ', Split(s));

    /// <summary><c>str.rstrip()</c>.</summary>
    public static string RStrip(string s)
    {
        int end = s.Length;
        while (end > 0 && IsSpace(s[end - 1])) end--;
        return s[..end];
    }

    /// <summary><c>str.strip()</c>.</summary>
    public static string Strip(string s)
    {
        int start = 0;
        while (start < s.Length && IsSpace(s[start])) start++;
        return RStrip(s[start..]);
    }

    /// <summary>Code points of s (a lone surrogate counts as itself, as in Python's surrogateescape text).</summary>
    public static int[] CodePoints(string s)
    {
        var cps = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                cps.Add(char.ConvertToUtf32(s[i], s[i + 1]));
                i++;
            }
            else cps.Add(s[i]);
        }
        return cps.ToArray();
    }

    /// <summary>Appends one code point to a builder.</summary>
    public static void Append(StringBuilder sb, int cp)
    {
        if (cp < 0x10000) sb.Append((char)cp);
        else sb.Append(char.ConvertFromUtf32(cp));
    }

    /// <summary>
    /// <c>str.lower()</c>: full Unicode lowercase mapping. .NET's invariant ToLower is the simple mapping; the two
    /// differ for U+0130 (İ -> "i̇") and final sigma, handled here.
    /// </summary>
    public static string Lower(string s)
    {
        var lower = s.ToLowerInvariant();
        if (s.IndexOf('\u0130') < 0 && s.IndexOf('\u03A3') < 0) return lower;
        var sb = new StringBuilder(s.Length + 4);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '\u0130') sb.Append("i\u0307");
            else if (c == '\u03A3') sb.Append(IsFinalSigma(s, i) ? '\u03C2' : '\u03C3');
            else sb.Append(lower[i]);
        }
        return sb.ToString();
    }

    // Python's Final_Sigma rule: preceded by a cased letter (skipping case-ignorables) and not followed by one.
    private static bool IsFinalSigma(string s, int i)
    {
        int j = i - 1;
        while (j >= 0 && IsCaseIgnorable(s[j])) j--;
        if (j < 0 || !IsCased(s[j])) return false;
        int k = i + 1;
        while (k < s.Length && IsCaseIgnorable(s[k])) k++;
        return k >= s.Length || !IsCased(s[k]);
    }

    private static bool IsCased(char c) => char.IsUpper(c) || char.IsLower(c) ||
        CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(char c) => CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark
        or UnicodeCategory.EnclosingMark or UnicodeCategory.Format or UnicodeCategory.ModifierLetter
        or UnicodeCategory.ModifierSymbol || c is '\'' or '.' or ':' or '\u00B7' or '\u2019';

    /// <summary>
    /// Python's <c>f"{x:.{digits}f}"</c>: the exact binary value rounded half-to-even (.NET rounds ties away from
    /// zero), so printed scores match sacreBLEU digit for digit.
    /// </summary>
    public static string Fixed(double x, int digits)
    {
        if (double.IsNaN(x) || double.IsInfinity(x)) return x.ToString(CultureInfo.InvariantCulture);
        // .NET Core 3.0+ prints the exact decimal expansion of a double for large precisions.
        var exact = Math.Abs(x).ToString("F120", CultureInfo.InvariantCulture);
        int dot = exact.IndexOf('.');
        var kept = exact[..(dot + 1 + digits)].Replace(".", "");
        var rest = exact[(dot + 1 + digits)..];
        bool up = rest[0] > '5' || (rest[0] == '5' && (rest.Skip(1).Any(c => c != '0') || (kept[^1] - '0') % 2 == 1));
        if (up)
        {
            var chars = kept.ToCharArray();
            int p = chars.Length - 1;
            while (p >= 0 && chars[p] == '9') chars[p--] = '0';
            if (p >= 0) chars[p]++;
            kept = p >= 0 ? new string(chars) : "1" + new string(chars);
        }
        var intPart = kept[..^digits];
        if (intPart.Length == 0) intPart = "0";
        var text = digits > 0 ? $"{intPart}.{kept[^digits..]}" : intPart;
        return (x < 0 || (x == 0 && double.IsNegative(x))) ? "-" + text : text;
    }
}
