using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Checkpoints;

namespace ZCode.Cli.Commands;

/// <summary>`zcode inspect CKPT`: step, tokens, model shape, parameter counts, expert load and file integrity.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("checkpoint") { Description = "step directory, OUTPUT/checkpoints/latest or a run directory" };
        var json = new Option<bool>("--json") { Description = "print JSON instead of text" };
        var cmd = new Command("inspect", "Describe a checkpoint and verify its files") { path, json };
        cmd.SetAction(parse =>
        {
            var report = CheckpointInspector.Report(parse.GetValue(path)!);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
                output.WriteLine(report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            else
                WriteText(report, output);
            // A damaged checkpoint is a finding, not a crash: report it fully, then fail the command.
            return report["files_ok"]!.GetValue<bool>() ? CliApp.ExitOk : CliApp.ExitRuntime;
        });
        return cmd;
    }

    private static void WriteText(JsonObject r, TextWriter o)
    {
        var c = r["config"]!;
        o.WriteLine($"checkpoint {r["directory"]}  ({r["format"]})");
        o.WriteLine($"step {r["step"]}, {r["total_tokens"]!.GetValue<long>():N0} tokens seen" +
                    (r["has_optimizer_state"]!.GetValue<bool>() ? ", optimizer state stored" : ", no optimizer state"));
        if (r["note"] is { } note) o.WriteLine($"note: {note}");
        o.WriteLine($"model: {c["encoder_layers"]}+{c["decoder_layers"]} layers, d_model {c["d_model"]}, ffn {c["ffn_dim"]}, heads {c["heads"]}, " +
                    $"vocab {c["vocab_size"]}, top-{c["top_k"]}, MoE every {c["every_n_layers"]} layers");
        o.WriteLine($"experts per MoE layer: [{string.Join(", ", r["experts"]!.AsArray())}]");
        o.WriteLine($"parameters: total {r["total_params"]!.GetValue<long>():N0}, non-expert {r["non_expert_params"]!.GetValue<long>():N0}, " +
                    $"per expert {r["per_expert_params"]!.GetValue<long>():N0}, active per token {r["active_params_per_token"]!.GetValue<long>():N0}");
        if (r["expert_load"] is JsonArray load && load.Count > 0)
        {
            o.WriteLine("expert load (last logged step, fraction of routed tokens):");
            for (int i = 0; i < load.Count; i++)
                o.WriteLine($"  L{i:D2}: " + string.Join(" ", load[i]!.AsArray().Select(v => $"{v!.GetValue<double>():F3}")));
        }
        o.WriteLine($"files: {(r["files_ok"]!.GetValue<bool>() ? "all verified (size + SHA-256)" : "DAMAGED")}");
        foreach (var f in r["files"]!.AsArray())
            o.WriteLine($"  {(f!["ok"]!.GetValue<bool>() ? "ok " : "BAD")} {f["name"],-36} {f["size"]!.GetValue<long>(),14:N0} B" +
                        (f["problem"] is { } p ? $"  {p}" : ""));
    }
}
