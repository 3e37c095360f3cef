namespace ZCode;

/// <summary>
/// Bad input from the user (config, arguments, data). The CLI prints <see cref="Exception.Message"/> as one
/// line and exits with code 2; the message names the file/line/key and says how to fix it.
/// </summary>
public class UserInputException : Exception
{
    public UserInputException(string message) : base(message) { }
    public UserInputException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Formats the conventional "FILE:LINE:COL: message" prefix (line/col 1-based; omitted when 0).</summary>
    public static UserInputException At(string file, long line, long column, string message)
        => new(line > 0 ? $"{file}:{line}:{column}: {message}" : $"{file}: {message}");
}
