using System.CommandLine;
using System.Text.Json;
using ZCode.Model;

namespace ZCode.Cli.Commands;

/// <summary>`zcode plan`: exact parameter counts from a config, without allocating the model.</summary>
internal static class PlanCommand
{
    public static Command Create()
    {
        var config = CommonOptions.ConfigOption();
        var sets = CommonOptions.SetOption();
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var cmd = new Command("plan", "Parameter counts (total, base, per expert, active per token) of a config") { config, sets, json };
        cmd.SetAction(parse =>
        {
            var cfg = CommonOptions.LoadConfig(parse.GetValue(config), parse.GetValue(sets) ?? []);
            var c = ParameterCount.Of(cfg.Model);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["total_params"] = c.Total,
                    ["base_params"] = c.Base,
                    ["non_expert_params"] = c.NonExpert,
                    ["expert_params"] = c.Expert,
                    ["per_expert_params"] = c.PerExpert,
                    ["active_params_per_token"] = c.ActivePerToken,
                    ["embedding_params"] = c.Embedding,
                    ["moe_layers"] = c.EncoderMoeLayers + c.DecoderMoeLayers,
                    ["experts"] = cfg.Model.Moe.Experts,
                }, new JsonSerializerOptions { WriteIndented = true }));
                return CliApp.ExitOk;
            }
            var m = cfg.Model;
            output.WriteLine($"model: {m.EncoderLayers} encoder + {m.DecoderLayers} decoder layers, d_model {m.DModel}, ffn {m.FfnDim}, " +
                             $"{m.Heads} heads, vocab {m.VocabSize}");
            output.WriteLine($"MoE:   {c.EncoderMoeLayers} encoder + {c.DecoderMoeLayers} decoder MoE layers x {m.Moe.Experts} experts, top-{m.Moe.TopK}");
            output.WriteLine($"  total parameters          {c.Total,18:N0}  ({Human(c.Total)})");
            output.WriteLine($"  base (dense model)        {c.Base,18:N0}  ({Human(c.Base)})  non-expert + one FFN per MoE layer");
            output.WriteLine($"  non-expert (shared)       {c.NonExpert,18:N0}  ({Human(c.NonExpert)})");
            output.WriteLine($"  experts (all)             {c.Expert,18:N0}  ({Human(c.Expert)})");
            output.WriteLine($"  per expert                {c.PerExpert,18:N0}  ({Human(c.PerExpert)})");
            output.WriteLine($"  active per token          {c.ActivePerToken,18:N0}  ({Human(c.ActivePerToken)})");
            output.WriteLine($"  embedding (shared, tied)  {c.Embedding,18:N0}  ({Human(c.Embedding)})");
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static string Human(long n) => n switch
    {
        >= 1_000_000_000 => $"{n / 1e9:F2}B",
        >= 1_000_000 => $"{n / 1e6:F1}M",
        >= 1_000 => $"{n / 1e3:F1}K",
        _ => n.ToString(),
    };
}
