using System.CommandLine;
using ZCode.Checkpoints;
using ZCode.Cli.Ui;
using ZCode.Data;
using ZCode.Text;

namespace ZCode.Cli.Commands;

/// <summary>`zcode aggregate-experts` and `zcode prune-experts` (Aggregation of Experts, expert pruning).</summary>
internal static class ExpertCommands
{
    public static Command Aggregate()
    {
        var from = new Option<string[]>("--from") { Description = "input checkpoint (give two or more, in order)", Required = true, AllowMultipleArgumentsPerToken = false };
        var output = new Option<string>("--out") { Description = "new checkpoint directory (must not exist)", Required = true };
        var shared = new Option<string>("--shared") { Description = "non-expert weights: average (default) | first", DefaultValueFactory = _ => "average" };
        shared.AcceptOnlyFromAmong("average", "first");
        var cmd = new Command("aggregate-experts", "Combine the experts of compatible checkpoints into one model (E1+E2+... experts)") { from, output, shared };
        cmd.SetAction(parse =>
        {
            var inputs = parse.GetValue(from) ?? [];
            var mode = parse.GetValue(shared) == "first" ? ExpertSurgery.SharedMode.First : ExpertSurgery.SharedMode.Average;
            var cfg = ExpertSurgery.Aggregate(inputs, parse.GetValue(output)!, mode);
            parse.InvocationConfiguration.Output.WriteLine(
                $"wrote {Path.GetFullPath(parse.GetValue(output)!)}: {cfg.Model.Moe.Experts} experts per MoE layer, no optimizer state; " +
                $"continue with: zcode train --init-from {parse.GetValue(output)}");
            return CliApp.ExitOk;
        });
        return cmd;
    }

    public static Command Prune()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "checkpoint to prune", Required = true };
        var keep = new Option<int>("--keep") { Description = "experts kept per MoE layer (the most used)", Required = true };
        var data = new Option<string>("--data") { Description = "data to measure usage on: valid (the config's data.valid)", DefaultValueFactory = _ => "valid" };
        data.AcceptOnlyFromAmong("valid");
        var langs = new Option<string?>("--langs") { Description = "only examples whose target language is listed (comma-separated, e.g. deu_Latn,fra_Latn)" };
        var output = new Option<string>("--out") { Description = "new checkpoint directory (must not exist)", Required = true };
        var cmd = new Command("prune-experts", "Keep the N most used experts per MoE layer (usage measured on data)") { checkpoint, keep, data, langs, output };
        cmd.SetAction(parse =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var loaded = CheckpointReader.Load(parse.GetValue(checkpoint)!);
            int n = parse.GetValue(keep);
            if (n < 1 || n > loaded.Config.Model.Moe.Experts)
                throw new UserInputException($"--keep: must be between 1 and the checkpoint's {loaded.Config.Model.Moe.Experts} experts, got {n}");
            var source = DataSource.FromPrepared(loaded.Config, PrepareProgressPrinter.Prepare(loaded.Config, stdout));
            source.Verifier.Verify(source.Verifier.TokenFiles("valid"));
            var sets = source.ValidSets.ToList();
            var wanted = parse.GetValue(langs);
            if (!string.IsNullOrWhiteSpace(wanted))
            {
                var codes = wanted.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var available = sets.Select(s => s.TgtLang).Distinct().ToList();
                foreach (var c in codes.Where(c => !available.Contains(c)))
                    throw new UserInputException($"--langs: no validation data has target language '{c}'; available: {string.Join(", ", available)}");
                sets = sets.Where(s => codes.Contains(s.TgtLang)).ToList();
            }
            var usage = ModelProbe.ExpertUsage(loaded.Model, sets.SelectMany(s => source.ValidBatches(s)));
            var kept = usage.Select(u => ExpertSurgery.MostUsed(u, n)).ToArray();
            var measured = $"data.valid ({string.Join(", ", sets.Select(s => s.Name))})";
            ExpertSurgery.Prune(loaded.Directory, kept, usage, parse.GetValue(output)!, measured);
            for (int l = 0; l < usage.Length; l++)
                stdout.WriteLine($"L{l:D2}: usage [{string.Join(", ", usage[l].Select(u => u.ToString("F0")))}] -> keep [{string.Join(", ", kept[l])}]");
            stdout.WriteLine($"wrote {Path.GetFullPath(parse.GetValue(output)!)}: {n} experts per MoE layer");
            return CliApp.ExitOk;
        });
        return cmd;
    }
}
