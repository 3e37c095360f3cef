using YamlDotNet.Core;

namespace ZCode.Config;

/// <summary>Short, lower-case descriptions of YamlDotNet parse errors for one-line messages.</summary>
internal static class YamlErrors
{
    public static string Describe(YamlException e)
    {
        var message = e.Message.Trim().TrimEnd('.');
        if (message.StartsWith("Duplicate key ", StringComparison.Ordinal))
            return $"duplicate key '{message["Duplicate key ".Length..]}'";
        return "YAML syntax error: " + (message.Length > 0 ? char.ToLowerInvariant(message[0]) + message[1..] : "unreadable input");
    }
}
