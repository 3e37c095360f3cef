namespace ZCode.Config;

/// <summary>Finds the zcode source checkout (the directory holding ZCode.Trainer.sln) above a starting directory.</summary>
public static class RepositoryRoot
{
    public const string MarkerFile = "ZCode.Trainer.sln";

    /// <summary>
    /// The first directory holding <see cref="MarkerFile"/>, walking up from the current directory and then from the
    /// application's directory (a built zcode lives under the checkout's bin/); null when neither is in a checkout.
    /// </summary>
    public static string? Find()
        => FindFrom(Directory.GetCurrentDirectory()) ?? FindFrom(AppContext.BaseDirectory);

    public static string? FindFrom(string start)
    {
        for (var dir = new DirectoryInfo(Path.GetFullPath(start)); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, MarkerFile)))
                return dir.FullName;
        return null;
    }
}
