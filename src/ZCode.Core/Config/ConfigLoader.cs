using System.Reflection;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ZCode.Config;

/// <summary>
/// Loads a config: YAML file (or the built-in default) bound onto the schema defaults, then each --set override,
/// then validation. Every bad input becomes one <see cref="UserInputException"/> line "FILE:LINE:COL: message".
/// </summary>
public static class ConfigLoader
{
    /// <summary>Manifest resource name of the embedded configs/m3-tiny.yaml.</summary>
    public const string DefaultResourceName = "m3-tiny.yaml";

    /// <summary>How the built-in default is named in messages.</summary>
    public const string DefaultDisplayName = "<built-in m3-tiny.yaml>";

    public static ZCodeConfig LoadFile(string path, IEnumerable<string>? overrides = null)
    {
        if (Directory.Exists(path))
            throw UserInputException.At(path, 0, 0, "is a directory, expected a YAML config file");
        if (!File.Exists(path))
            throw UserInputException.At(path, 0, 0, "no such file");
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserInputException.At(path, 0, 0, $"cannot read: {e.Message}");
        }
        return LoadText(text, path, overrides, Path.GetDirectoryName(Path.GetFullPath(path)));
    }

    /// <summary>
    /// The embedded default (configs/m3-tiny.yaml). It behaves as if loaded from that file in the source checkout,
    /// so its relative data paths (../data-samples/...) resolve there wherever zcode is started inside the checkout.
    /// </summary>
    public static ZCodeConfig LoadDefault(IEnumerable<string>? overrides = null)
    {
        var root = RepositoryRoot.Find();
        var baseDirectory = root is null ? Directory.GetCurrentDirectory() : Path.Combine(root, "configs");
        return LoadText(DefaultText(), DefaultDisplayName, overrides, baseDirectory);
    }

    /// <summary>
    /// Loads YAML text; <paramref name="displayName"/> names it in errors; relative paths in it will resolve
    /// against <paramref name="baseDirectory"/> (default: the current directory).
    /// </summary>
    public static ZCodeConfig LoadText(string yaml, string displayName, IEnumerable<string>? overrides = null, string? baseDirectory = null)
    {
        var file = new ConfigSource(displayName, HasPositions: true);
        var map = new SourceMap(file);
        var config = new ZCodeConfig();
        if (Parse(yaml, file) is { } root)
            new YamlNodeBinder(file, map).BindObject(root, config, "");
        foreach (var spec in overrides ?? [])
        {
            var (source, tree) = ConfigOverrides.Parse(spec);
            new YamlNodeBinder(source, map).BindObject(tree, config, "");
        }
        ConfigValidator.Validate(config, map);
        config.Sources = map;
        config.BaseDirectory = Path.GetFullPath(baseDirectory ?? Directory.GetCurrentDirectory());
        return config;
    }

    /// <summary>The text of the embedded default config.</summary>
    public static string DefaultText()
    {
        using var stream = typeof(ConfigLoader).Assembly.GetManifestResourceStream(DefaultResourceName)
            ?? throw new InvalidOperationException($"embedded resource {DefaultResourceName} is missing from {typeof(ConfigLoader).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>The root mapping, or null for an empty document (all defaults).</summary>
    private static YamlMappingNode? Parse(string yaml, ConfigSource file)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw file.Error(e.Start, YamlErrors.Describe(e));
        }
        if (stream.Documents.Count == 0)
            return null;
        if (stream.Documents.Count > 1)
            throw file.Error(stream.Documents[1].RootNode.Start, "expected one YAML document, found several ('---' separators)");
        var root = stream.Documents[0].RootNode;
        if (ScalarConverter.IsNull(root))
            return null;
        return root as YamlMappingNode
            ?? throw file.Error(root.Start, $"expected a mapping of sections (model, data, tasks, train, parallel, eval), got {ScalarConverter.DescribeNode(root)}");
    }
}
