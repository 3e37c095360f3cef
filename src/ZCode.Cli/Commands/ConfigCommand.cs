using System.CommandLine;
using ZCode.Config;

namespace ZCode.Cli.Commands;

/// <summary>`zcode config validate|show`: check a configuration, or print it fully resolved.</summary>
public static class ConfigCommand
{
    public static Command Create() => new("config", "Check configuration files or print the resolved configuration")
    {
        CreateValidate(),
        CreateShow(),
    };

    private static Command CreateValidate()
    {
        var file = new Argument<string>("FILE") { Description = "YAML config file" };
        var sets = CommonOptions.SetOption();
        var ranks = new Option<int?>("--ranks")
        {
            Description = "check the config as it would run on N processes started by mpirun on this machine " +
                          "(default: this launch, 1 process outside mpirun/srun)",
            HelpName = "N",
        };
        var command = new Command("validate", "Check a config with its overrides as `zcode train` would before it starts " +
                                              "(values, data files, languages, vocabulary, tasks, device, processes); prints " +
                                              "'FILE: ok' or the first error")
        {
            file,
            sets,
            ranks,
        };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(file)!;
            var environment = RunEnvironment.Current();
            if (parse.GetValue(ranks) is int n)
                environment = n >= 1 ? environment.WithRanks(n) : throw new UserInputException($"--ranks: must be at least 1, got {n}");
            ConfigValidator.ValidateRun(CommonOptions.LoadConfig(path, parse.GetValue(sets)), RunChecks.All, environment);
            parse.InvocationConfiguration.Output.WriteLine($"{path}: ok");
            return CliApp.ExitOk;
        });
        return command;
    }

    private static Command CreateShow()
    {
        var file = new Argument<string?>("FILE")
        {
            Description = "YAML config file (default: the built-in configs/m3-tiny.yaml)",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var sets = CommonOptions.SetOption();
        var command = new Command("show", "Print the configuration with defaults and overrides applied, as YAML")
        {
            file,
            sets,
        };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(file);
            var config = CommonOptions.LoadConfig(path, parse.GetValue(sets));
            var output = parse.InvocationConfiguration.Output;
            output.WriteLine($"# {path ?? ConfigLoader.DefaultDisplayName}, resolved; relative paths are relative to {config.BaseDirectory}");
            output.Write(ConfigWriter.ToYaml(config));
            return CliApp.ExitOk;
        });
        return command;
    }
}
