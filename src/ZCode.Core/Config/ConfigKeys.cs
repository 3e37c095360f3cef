using System.Collections.Concurrent;
using System.Reflection;
using System.Text;
using YamlDotNet.Serialization;

namespace ZCode.Config;

/// <summary>One YAML key of a schema type and the property it binds to.</summary>
internal sealed record ConfigKey(string Name, PropertyInfo Property);

/// <summary>Maps schema properties to snake_case YAML keys (CapacityFactor <-> capacity_factor), in declaration order.</summary>
internal static class ConfigKeys
{
    private static readonly ConcurrentDictionary<Type, IReadOnlyList<ConfigKey>> Cache = new();

    public static IReadOnlyList<ConfigKey> For(Type type) => Cache.GetOrAdd(type, t => t
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanRead && p.CanWrite && p.GetCustomAttribute<YamlIgnoreAttribute>() is null)
        .OrderBy(p => p.MetadataToken) // declaration order, so written YAML follows the schema's layout
        .Select(p => new ConfigKey(ToSnakeCase(p.Name), p))
        .ToList());

    public static ConfigKey? Find(Type type, string name) => For(type).FirstOrDefault(k => k.Name == name);

    /// <summary>
    /// PascalCase to snake_case. An underscore goes before an upper-case letter that follows a lower-case
    /// letter or digit, or that starts a new word after an acronym: EveryNLayers -> every_n_layers,
    /// DModel -> d_model, MaxLenA -> max_len_a, AdamBeta1 -> adam_beta1.
    /// </summary>
    public static string ToSnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c) && i > 0)
            {
                var previous = name[i - 1];
                var nextIsLower = i + 1 < name.Length && char.IsLower(name[i + 1]);
                if (char.IsLower(previous) || char.IsDigit(previous) || (char.IsUpper(previous) && nextIsLower))
                    sb.Append('_');
            }
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>"a list", "a mapping", "an integer"...: what a value of this schema type looks like in YAML.</summary>
    public static string Describe(Type type) => type switch
    {
        _ when type == typeof(int) || type == typeof(long) => "an integer",
        _ when type == typeof(double) => "a number",
        _ when type == typeof(bool) => "true or false",
        _ when type == typeof(string) => "a string",
        _ when IsList(type, out _) => "a list",
        _ => "a mapping",
    };

    public static bool IsScalar(Type type)
        => type == typeof(int) || type == typeof(long) || type == typeof(double) || type == typeof(bool) || type == typeof(string);

    public static bool IsList(Type type, out Type elementType)
    {
        var isList = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>);
        elementType = isList ? type.GetGenericArguments()[0] : typeof(object);
        return isList;
    }

    /// <summary>Joins a parent path and a key: ("model", "moe") -> "model.moe"; ("", "model") -> "model".</summary>
    public static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
}
