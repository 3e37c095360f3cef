using YamlDotNet.Core;

namespace ZCode.Config;

/// <summary>
/// Remembers where each bound value came from (dotted path -> source and position), so validation, which runs
/// on the typed config after binding, can still point at the offending line:column.
/// </summary>
internal sealed class SourceMap(ConfigSource fallback)
{
    private readonly Dictionary<string, (ConfigSource Source, Mark Mark)> _locations = new();

    public void Record(string path, ConfigSource source, Mark mark) => _locations[path] = (source, mark);

    /// <summary>Drops the locations of everything under <paramref name="path"/>, e.g. when a list is replaced whole.</summary>
    public void ForgetBelow(string path)
    {
        foreach (var key in _locations.Keys.Where(k => k.StartsWith(path + ".", StringComparison.Ordinal) || k.StartsWith(path + "[", StringComparison.Ordinal)).ToList())
            _locations.Remove(key);
    }

    /// <summary>Everything under <paramref name="path"/> now comes from <paramref name="source"/> (no positions).</summary>
    public void Replace(string path, ConfigSource source)
    {
        ForgetBelow(path);
        Record(path, source, Mark.Empty);
    }

    /// <summary>
    /// An error located at the first of <paramref name="paths"/> that was written explicitly; failing that, at the
    /// nearest written ancestor of the first path (a default value inside a written section); failing that, the
    /// main source without a position.
    /// </summary>
    public UserInputException Error(string message, params string[] paths)
    {
        foreach (var path in paths)
            if (_locations.TryGetValue(path, out var exact))
                return exact.Source.Error(exact.Mark, message);
        for (var path = Parent(paths[0]); path is not null; path = Parent(path))
            if (_locations.TryGetValue(path, out var ancestor))
                return ancestor.Source.Error(ancestor.Mark, message);
        return fallback.Error(message);
    }

    private static string? Parent(string path)
    {
        if (path.Length == 0)
            return null;
        var cut = Math.Max(path.LastIndexOf('.'), path.LastIndexOf('['));
        return cut < 0 ? "" : path[..cut];
    }
}
