using System.Collections;
using YamlDotNet.RepresentationModel;

namespace ZCode.Config;

/// <summary>
/// Binds a YAML mapping onto a schema object by reflection (snake_case keys). Only keys present are set, so
/// binding merges: missing keys keep what the object already holds (schema defaults, or earlier sources).
/// Lists are replaced whole. Every bound value's position is recorded in the <see cref="SourceMap"/>.
/// </summary>
internal sealed class YamlNodeBinder(ConfigSource source, SourceMap map)
{
    public void BindObject(YamlMappingNode node, object target, string path)
    {
        var type = target.GetType();
        foreach (var (keyNode, valueNode) in node.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { Length: > 0 } name })
                throw source.Error(keyNode.Start, $"{Where(path)}expected a key name, got {ScalarConverter.DescribeNode(keyNode)}");
            var key = ConfigKeys.Find(type, name) ?? throw UnknownKey(keyNode, name, type, path);
            var childPath = ConfigKeys.Join(path, name);
            key.Property.SetValue(target, BindValue(valueNode, key.Property.PropertyType, childPath, key.Property.GetValue(target)));
        }
    }

    private object BindValue(YamlNode node, Type type, string path, object? existing)
    {
        map.Record(path, source, node.Start);
        if (ConfigKeys.IsScalar(type))
            return ScalarConverter.Convert(node, type, out var error) ?? throw source.Error(node.Start, $"{path}: {error}");
        if (ConfigKeys.IsList(type, out var elementType))
            return BindList(node, type, elementType, path);

        // A section left empty ("moe:") keeps its defaults, as if it were absent.
        if (ScalarConverter.IsNull(node))
            return existing ?? Activator.CreateInstance(type)!;
        if (node is not YamlMappingNode mapping)
            throw source.Error(node.Start, $"{path}: expected a mapping with keys {string.Join(", ", ConfigKeys.For(type).Select(k => k.Name))}; got {ScalarConverter.DescribeNode(node)}");
        var target = existing ?? Activator.CreateInstance(type)!;
        BindObject(mapping, target, path);
        return target;
    }

    private IList BindList(YamlNode node, Type listType, Type elementType, string path)
    {
        map.ForgetBelow(path);
        var list = (IList)Activator.CreateInstance(listType)!;
        if (ScalarConverter.IsNull(node))
            return list; // "languages:" with nothing after it: an empty list
        if (node is not YamlSequenceNode sequence)
            throw source.Error(node.Start, $"{path}: expected a list (e.g. [a, b] or '- item' lines), got {ScalarConverter.DescribeNode(node)}");
        for (var i = 0; i < sequence.Children.Count; i++)
            list.Add(BindValue(sequence.Children[i], elementType, $"{path}[{i}]", null));
        return list;
    }

    private UserInputException UnknownKey(YamlNode keyNode, string name, Type type, string path)
    {
        var names = ConfigKeys.For(type).Select(k => k.Name).ToList();
        var where = path.Length == 0 ? "" : $" in {path}";
        var suggestion = Suggest.Closest(name, names);
        return source.Error(keyNode.Start, suggestion is not null
            ? $"unknown key '{name}'{where}, did you mean '{suggestion}'?"
            : $"unknown key '{name}'{where} (valid keys: {string.Join(", ", names)})");
    }

    private static string Where(string path) => path.Length == 0 ? "" : $"{path}: ";
}
