using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ZCode.Config;

/// <summary>
/// Turns "--set KEY=VALUE" into a YAML tree: model.moe.experts=16 becomes {model: {moe: {experts: 16}}}. The
/// tree is then bound like the file, so overrides get the same type checks, unknown-key suggestions and
/// validation. VALUE is YAML: 16, bfloat16, [eng_Latn, deu_Latn], {experts: 8, top_k: 2}.
/// </summary>
internal static partial class ConfigOverrides
{
    [GeneratedRegex(@"^[A-Za-z0-9_-]+$")]
    private static partial Regex KeyPattern();

    /// <summary>The source name used in errors ("--set KEY=VALUE") and the override as a YAML mapping.</summary>
    public static (ConfigSource Source, YamlMappingNode Tree) Parse(string spec)
    {
        var source = new ConfigSource($"--set {spec}", HasPositions: false);
        var eq = spec.IndexOf('=');
        if (eq < 0)
            throw source.Error("expected KEY=VALUE with a dotted key, e.g. --set model.moe.experts=16");
        var key = spec[..eq].Trim();
        var segments = key.Split('.');
        if (segments.Any(s => !KeyPattern().IsMatch(s)))
            throw source.Error($"invalid key '{key}': expected a dotted path of snake_case names, e.g. model.moe.experts");

        YamlNode node = ParseValue(spec[(eq + 1)..], source);
        for (var i = segments.Length - 1; i >= 0; i--)
            node = new YamlMappingNode(new YamlScalarNode(segments[i]), node);
        return (source, (YamlMappingNode)node);
    }

    private static YamlNode ParseValue(string text, ConfigSource source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw source.Error($"invalid value: {YamlErrors.Describe(e)}");
        }
        // An empty value binds as YAML null: an empty list, a section's defaults, or a type error for scalars.
        return stream.Documents.Count == 0 ? new YamlScalarNode("") : stream.Documents[0].RootNode;
    }
}
