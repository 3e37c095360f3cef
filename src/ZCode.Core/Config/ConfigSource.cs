using YamlDotNet.Core;

namespace ZCode.Config;

/// <summary>
/// Where YAML text came from: a file (errors carry line:column) or one --set override (errors name the
/// override itself; line:column inside a one-line value would only confuse).
/// </summary>
internal sealed record ConfigSource(string Name, bool HasPositions)
{
    public UserInputException Error(Mark mark, string message)
        => HasPositions ? UserInputException.At(Name, mark.Line, mark.Column, message) : UserInputException.At(Name, 0, 0, message);

    public UserInputException Error(string message) => UserInputException.At(Name, 0, 0, message);
}
