using System.CommandLine;
using ZCode.Config;

namespace ZCode.Cli.Commands;

/// <summary>Options shared by the commands that take a configuration (config, train, plan, ...).</summary>
public static class CommonOptions
{
    /// <summary>--set KEY=VALUE, repeatable (--set a=1 --set b=2); one KEY=VALUE per --set.</summary>
    public static Option<string[]> SetOption() => new("--set")
    {
        Description = "Override a config value: dotted snake_case key and YAML value, e.g. --set model.moe.experts=16 "
                      + "or --set data.languages=[eng_Latn,deu_Latn]; repeatable",
        HelpName = "KEY=VALUE",
        Arity = ArgumentArity.OneOrMore, // each --set needs its KEY=VALUE; the option itself stays optional
        // One value per --set, so a following positional argument is never swallowed as an override.
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>--config FILE; without it the built-in default (configs/m3-tiny.yaml) is used.</summary>
    public static Option<string?> ConfigOption() => new("--config")
    {
        Description = "YAML config file (default: the built-in configs/m3-tiny.yaml)",
        HelpName = "FILE",
    };

    /// <summary>Loads <paramref name="file"/> (or the built-in default when null) with the overrides, validated.</summary>
    public static ZCodeConfig LoadConfig(string? file, string[]? sets)
        => file is null ? ConfigLoader.LoadDefault(sets ?? []) : ConfigLoader.LoadFile(file, sets ?? []);
}
