using System.Globalization;
using System.Numerics;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ZCode.Config;

/// <summary>Converts YAML scalars to the schema's scalar types, with messages that say what was expected.</summary>
internal static class ScalarConverter
{
    /// <summary>YAML 1.2 core-schema nulls; only plain (unquoted) scalars can be null.</summary>
    public static bool IsNull(YamlNode node)
        => node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    /// <summary>The value, or null with <paramref name="error"/> set to the part of the message after "path: ".</summary>
    public static object? Convert(YamlNode node, Type type, out string? error)
    {
        error = null;
        if (node is not YamlScalarNode scalar || IsNull(node))
        {
            error = $"expected {ConfigKeys.Describe(type)}, got {DescribeNode(node)}";
            return null;
        }
        var text = scalar.Value ?? "";
        if (type == typeof(string))
            return text;
        if (type == typeof(int) || type == typeof(long))
            return ParseInteger(text, type, out error);
        if (type == typeof(double))
        {
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d))
                return d;
            error = $"expected a number, got '{text}'";
            return null;
        }
        if (type == typeof(bool))
        {
            // YAML 1.2 booleans only: 'yes'/'no'/'on'/'off' are strings there, and a language code 'no' must stay one.
            if (text is "true" or "True" or "TRUE") return true;
            if (text is "false" or "False" or "FALSE") return false;
            error = $"expected true or false, got '{text}'";
            return null;
        }
        throw new ArgumentException($"not a scalar schema type: {type}");
    }

    private static object? ParseInteger(string text, Type type, out string? error)
    {
        error = null;
        const NumberStyles style = NumberStyles.AllowLeadingSign;
        if (type == typeof(int) && int.TryParse(text, style, CultureInfo.InvariantCulture, out var i))
            return i;
        if (type == typeof(long) && long.TryParse(text, style, CultureInfo.InvariantCulture, out var l))
            return l;
        error = BigInteger.TryParse(text, style, CultureInfo.InvariantCulture, out _)
            ? $"integer out of range (at most {(type == typeof(int) ? int.MaxValue : long.MaxValue)}), got '{text}'"
            : $"expected an integer, got '{text}'";
        return null;
    }

    /// <summary>How a node reads in an error message: 'abc', a list, a mapping, an empty value.</summary>
    public static string DescribeNode(YamlNode node) => node switch
    {
        _ when IsNull(node) => "an empty value",
        YamlScalarNode s => $"'{s.Value}'",
        YamlSequenceNode => "a list",
        YamlMappingNode => "a mapping",
        _ => "an unsupported YAML node",
    };
}
