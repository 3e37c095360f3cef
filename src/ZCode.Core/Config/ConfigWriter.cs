using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace ZCode.Config;

/// <summary>Writes a config as YAML with snake_case keys in schema order; the output loads back to an equal config.</summary>
public static partial class ConfigWriter
{
    // Strings written unquoted: identifier/path-like text that YAML cannot read as anything else.
    [GeneratedRegex(@"^[A-Za-z0-9_./][A-Za-z0-9_./+-]*$")]
    private static partial Regex PlainString();

    // Plain scalars a YAML reader would take as numbers, booleans or null (core schema and YAML 1.1 extras).
    [GeneratedRegex(@"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|0x[0-9a-fA-F]+|0o[0-7]+|(true|false|yes|no|on|off|y|n|null|~)|(True|False|Yes|No|On|Off|Y|N|Null)|(TRUE|FALSE|YES|NO|ON|OFF|NULL))$")]
    private static partial Regex ResolvesToNonString();

    public static string ToYaml(ZCodeConfig config)
    {
        var sb = new StringBuilder();
        var first = true;
        foreach (var key in ConfigKeys.For(typeof(ZCodeConfig)))
        {
            if (!first)
                sb.Append('\n'); // a blank line between top-level sections, for people reading it
            first = false;
            WriteEntry(sb, key.Name, key.Property.GetValue(config)!, indent: 0);
        }
        return sb.ToString();
    }

    private static void WriteEntry(StringBuilder sb, string name, object value, int indent)
    {
        var pad = new string(' ', indent);
        var type = value.GetType();
        if (ConfigKeys.IsScalar(type))
            sb.Append(pad).Append(name).Append(": ").Append(Scalar(value)).Append('\n');
        else if (ConfigKeys.IsList(type, out var elementType))
            WriteList(sb, name, (IList)value, elementType, indent);
        else
        {
            sb.Append(pad).Append(name).Append(":\n");
            WriteObject(sb, value, indent + 2, firstLinePrefix: null);
        }
    }

    private static void WriteList(StringBuilder sb, string name, IList list, Type elementType, int indent)
    {
        var pad = new string(' ', indent);
        if (list.Count == 0 || ConfigKeys.IsScalar(elementType))
        {
            // Scalar lists in flow style ("languages: [eng_Latn, deu_Latn]") keep long language lists compact.
            var items = list.Cast<object>().Select(Scalar);
            sb.Append(pad).Append(name).Append(": [").Append(string.Join(", ", items)).Append("]\n");
            return;
        }
        sb.Append(pad).Append(name).Append(":\n");
        foreach (var item in list)
            WriteObject(sb, item!, indent + 4, firstLinePrefix: pad + "  - ");
    }

    /// <summary>Writes an object's keys at <paramref name="indent"/>; a list item replaces the first line's indent with "- ".</summary>
    private static void WriteObject(StringBuilder sb, object value, int indent, string? firstLinePrefix)
    {
        foreach (var key in ConfigKeys.For(value.GetType()))
        {
            var start = sb.Length;
            WriteEntry(sb, key.Name, key.Property.GetValue(value)!, indent);
            if (firstLinePrefix is not null)
            {
                sb.Remove(start, indent).Insert(start, firstLinePrefix);
                firstLinePrefix = null;
            }
        }
    }

    private static string Scalar(object value) => value switch
    {
        string s => Quote(s),
        bool b => b ? "true" : "false",
        double d => Number(d),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => throw new ArgumentException($"not a scalar: {value.GetType()}"),
    };

    /// <summary>Shortest round-trip form, always with a '.' or exponent so it reads as a float: 1.0, 0.002, 1E-08.</summary>
    private static string Number(double d)
    {
        var s = d.ToString("R", CultureInfo.InvariantCulture);
        return s.Contains('.') || s.Contains('E') ? s : s + ".0";
    }

    private static string Quote(string s)
    {
        if (PlainString().IsMatch(s) && !ResolvesToNonString().IsMatch(s))
            return s;
        var sb = new StringBuilder("\"");
        foreach (var c in s)
        {
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\t' => "\\t",
                '\r' => "\\r",
                // Controls and the Unicode line/paragraph separators and BOM, which YAML 1.1 readers treat as breaks.
                _ when char.IsControl(c) || c is '\u2028' or '\u2029' or '\uFEFF' => $"\\u{(int)c:X4}",
                _ => c.ToString(),
            });
        }
        return sb.Append('"').ToString();
    }
}
