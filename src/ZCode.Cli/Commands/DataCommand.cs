using System.CommandLine;
using ZCode.Cli.Ui;
using ZCode.Config;
using ZCode.Data.Shards;

namespace ZCode.Cli.Commands;

/// <summary>`zcode data prepare`: tokenize the configured corpora into memory-mapped shards.</summary>
internal static class DataCommand
{
    public static Command Create() => new("data", "Prepare training data") { CreatePrepare() };

    private static Command CreatePrepare()
    {
        var config = CommonOptions.ConfigOption();
        var sets = CommonOptions.SetOption();
        var force = new Option<bool>("--force") { Description = "rebuild the shards even when they are up to date" };
        var threads = new Option<int>("--threads") { Description = "tokenizer threads (default: all cores)" };
        var cmd = new Command("prepare",
            "Tokenize the corpora of the config's data section once into binary shards under data.shard_dir " +
            "(does nothing when inputs, model and max_len are unchanged)") { config, sets, force, threads };
        cmd.SetAction(parse =>
        {
            var cfg = CommonOptions.LoadConfig(parse.GetValue(config), parse.GetValue(sets));
            ConfigValidator.ValidateRun(cfg, RunChecks.Data);
            var output = parse.InvocationConfiguration.Output;
            var printer = new PrepareProgressPrinter(output);
            PrepareResult result;
            try { result = DataPreparer.Prepare(cfg, printer, parse.GetValue(force), parse.GetValue(threads)); }
            finally { printer.Finish(); }
            Report(result, output);
            return CliApp.ExitOk;
        });
        return cmd;
    }

    /// <summary>Summary lines: per corpus kept/skipped, per language, and speed.</summary>
    public static void Report(PrepareResult result, TextWriter output)
    {
        var index = result.Index;
        if (result.UpToDate)
        {
            output.WriteLine($"{result.IndexPath}: up to date (inputs, model and max_len unchanged); nothing to do");
            return;
        }
        foreach (var c in index.Corpora)
            output.WriteLine($"{c.Key} {c.Src}{(c.Section == "monolingual" ? "" : "-" + c.Tgt)}: {c.Kept:N0} of {c.Lines:N0} " +
                             $"lines kept ({c.SkippedEmpty:N0} empty, {c.SkippedTooLong:N0} longer than max_len {index.MaxLen})");
        foreach (var (lang, n) in index.ByLanguage)
            output.WriteLine($"  {lang}: {n.Sentences:N0} sentences, {n.Tokens:N0} tokens");
        output.WriteLine($"wrote {index.Files.Count} shards ({(index.IdWidth == 2 ? "uint16" : "uint32")} ids) and " +
                         $"{result.IndexPath} in {result.Seconds:F1} s ({result.Lines / Math.Max(1e-9, result.Seconds):N0} lines/s, " +
                         $"{result.Bytes / 1048576.0 / Math.Max(1e-9, result.Seconds):F1} MiB/s)");
    }
}
