using System.CommandLine;
using ZCode.Cli.Commands;

namespace ZCode.Cli;

/// <summary>Builds the command tree and maps outcomes to exit codes: 0 ok, 1 runtime failure, 2 bad input.</summary>
public static class CliApp
{
    public const int ExitOk = 0, ExitRuntime = 1, ExitBadInput = 2;

    public static RootCommand BuildRoot() => new("zcode: multitask multilingual Mixture-of-Experts seq2seq trainer (Z-code M3 recipe)")
    {
        TrainCommand.Create(),
        PlanCommand.Create(),
        ConfigCommand.Create(),
        InspectCommand.Create(),
        ExpertCommands.Aggregate(),
        ExpertCommands.Prune(),
        AverageCommand.Create(),
        DataCommand.Create(),
        VocabCommand.Create(),
        EvalCommand.Create(),
        TranslateCommand.Create(),
        ScoreCommand.Create(),
        BenchCommand.Create(),
        PlotCommand.Create(),
    };

    /// <summary>Parses and runs; bad arguments and <see cref="UserInputException"/> give exit code 2 and one line.</summary>
    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        // ZCODE_LIBTORCH: LibTorch must be loaded from there before anything touches TorchSharp. Without it, a build
        // that has no LibTorch of its own fails here in one line, except for the top-level help.
        try
        {
            bool helpOnly = args.Length == 0 || args is ["--help" or "-h" or "-?" or "--version"];
            ZCode.Runtime.LibTorchLoader.LoadFromEnvironment(requireLibTorch: !helpOnly);
        }
        catch (ZCode.Runtime.LibTorchLoadException e)
        {
            stderr.WriteLine($"zcode: error: {e.Message}");
            return ExitRuntime;
        }
        var root = BuildRoot();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var help = string.Join(' ', CommandPath(parse).Prepend("zcode").Append("--help"));
            stderr.WriteLine($"zcode: {parse.Errors[0].Message} (see '{help}')");
            return ExitBadInput;
        }
        try
        {
            var config = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
            return parse.Invoke(config);
        }
        catch (UserInputException e)
        {
            ZCode.Parallel.Communicators.AbortJob(e.Message, ExitBadInput); // in a multi-rank job: name the rank, end the job
            stderr.WriteLine(e.Message);
            return ExitBadInput;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("zcode: cancelled");
            return ExitRuntime;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("ZCODE_DEBUG") != "1")
        {
            var inner = e is TypeInitializationException { InnerException: not null } t ? t.InnerException! : e;
            ZCode.Parallel.Communicators.AbortJob($"error: {inner.Message}", ExitRuntime);
            stderr.WriteLine($"zcode: error: {inner.Message}");
            return ExitRuntime;
        }
    }

    private static IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var r = parse.CommandResult; r is not null && r.Command is not RootCommand; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Insert(0, r.Command.Name);
        return names;
    }
}
