using System.Globalization;

namespace ZCode.Config;

/// <summary>
/// Range checks that throw the first failure as a located <see cref="UserInputException"/>
/// ("path: must be ..., got ..."). Records every path it checked so a test can prove no schema value is skipped.
/// </summary>
internal sealed class ValueChecker(SourceMap map)
{
    private readonly HashSet<string> _checked = new();

    public IReadOnlySet<string> CheckedPaths => _checked;

    public void AtLeast(string path, long value, long min)
    {
        _checked.Add(path);
        if (value < min)
            throw map.Error($"{path}: must be at least {min}, got {value}", path);
    }

    public void AtLeast(string path, double value, double min)
    {
        _checked.Add(path);
        if (value < min)
            throw map.Error($"{path}: must be at least {Format(min)}, got {Format(value)}", path);
    }

    public void Positive(string path, double value)
    {
        _checked.Add(path);
        if (value <= 0)
            throw map.Error($"{path}: must be greater than 0, got {Format(value)}", path);
    }

    /// <summary>A probability-like value in [0, 1): dropout, label smoothing, Adam betas.</summary>
    public void Fraction(string path, double value)
    {
        _checked.Add(path);
        if (value is < 0 or >= 1)
            throw map.Error($"{path}: must be in [0, 1), got {Format(value)}", path);
    }

    public void OneOf(string path, string value, params string[] allowed)
    {
        _checked.Add(path);
        if (!allowed.Contains(value))
        {
            var suggestion = Suggest.Closest(value, allowed);
            var hint = suggestion is null ? "" : $" (did you mean '{suggestion}'?)";
            throw map.Error($"{path}: must be one of {string.Join(", ", allowed)}; got '{value}'{hint}", path);
        }
    }

    public void OneOf(string path, int value, params int[] allowed)
    {
        _checked.Add(path);
        if (!allowed.Contains(value))
            throw map.Error($"{path}: must be one of {string.Join(", ", allowed)}; got {value}", path);
    }

    public void NotEmpty(string path, string value)
    {
        _checked.Add(path);
        if (string.IsNullOrWhiteSpace(value))
            throw map.Error($"{path}: must not be empty", path);
    }

    /// <summary>For values where every value of the type is valid (booleans): recorded as checked on purpose.</summary>
    public void AnyValue(string path) => _checked.Add(path);

    /// <summary>A cross-field rule; the error is located at the first of <paramref name="paths"/> written in a source.</summary>
    public void Require(bool condition, string message, params string[] paths)
    {
        if (!condition)
            throw map.Error(message, paths);
    }

    /// <summary>A failed rule whose message is only known once it failed.</summary>
    public void Fail(string message, params string[] paths) => throw map.Error(message, paths);

    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
