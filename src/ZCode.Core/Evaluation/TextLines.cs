using System.Text;

namespace ZCode.Evaluation;

/// <summary>Reads text files the way sacreBLEU does (Python text mode): strict UTF-8, lines end at \n, \r\n or \r.</summary>
public static class TextLines
{
    /// <summary>The lines of <paramref name="path"/> without their terminators; a missing file or invalid UTF-8 is a
    /// <see cref="UserInputException"/> naming the file (and line).</summary>
    public static List<string> Read(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: file not found");
        var bytes = File.ReadAllBytes(path);
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            int line = 1 + bytes.Take(Math.Max(0, e.Index)).Count(b => b == (byte)'\n');
            throw UserInputException.At(path, line, 0, "invalid UTF-8");
        }
        return Split(text);
    }

    /// <summary>Python's universal-newline split: a final terminator does not start an empty line.</summary>
    public static List<string> Split(string text)
    {
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != '\n' && text[i] != '\r') continue;
            lines.Add(text[start..i]);
            if (text[i] == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
            start = i + 1;
        }
        if (start < text.Length) lines.Add(text[start..]);
        return lines;
    }
}
