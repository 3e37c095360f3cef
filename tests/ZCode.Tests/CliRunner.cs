using ZCode.Cli;
using ZCode.Config;

namespace ZCode.Tests;

/// <summary>Runs the CLI in-process with captured output, and finds the repository the tests run from.</summary>
internal static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = CliApp.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    public static string RepoRoot => RepositoryRoot.FindFrom(TestContext.CurrentContext.TestDirectory)
        ?? throw new InvalidOperationException($"no {RepositoryRoot.MarkerFile} above {TestContext.CurrentContext.TestDirectory}");
}
