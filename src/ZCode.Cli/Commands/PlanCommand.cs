using System.CommandLine;
using System.Text.Json;
using ZCode.Model;
using ZCode.Parallel;

namespace ZCode.Cli.Commands;

/// <summary>`zcode plan`: exact parameter counts from a config, without allocating the model; with --gpus, memory per
/// device of every ZeRO stage / offload / expert-parallel choice (<see cref="MemoryPlan"/>) and, with --gpu-memory, which
/// fit and the recommended one.</summary>
internal static class PlanCommand
{
    public static Command Create()
    {
        var config = CommonOptions.ConfigOption();
        var sets = CommonOptions.SetOption();
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var gpus = new Option<int?>("--gpus") { Description = "devices N: show memory per device of every ZeRO stage, offload and expert-parallel choice" };
        var gpuMemory = new Option<double?>("--gpu-memory") { Description = "GiB per device (with --gpus): mark the choices that fit and recommend one" };
        var cmd = new Command("plan", "Parameter counts (total, base, per expert, active per token) of a config; with --gpus N " +
                                      "[--gpu-memory GiB], memory per device of each parallel layout and a recommendation")
            { config, sets, json, gpus, gpuMemory };
        cmd.SetAction(parse =>
        {
            int? n = parse.GetValue(gpus);
            double? memory = parse.GetValue(gpuMemory);
            if (n is < 1 or > 1_000_000) throw new UserInputException($"--gpus: must be between 1 and 1000000, got {n}");
            if (memory is not null && n is null) throw new UserInputException("--gpu-memory: give --gpus N as well (memory is per device of N)");
            if (memory is double g && (!(g > 0) || double.IsInfinity(g))) throw new UserInputException($"--gpu-memory: must be a positive number of GiB, got {g}");
            var cfg = CommonOptions.LoadConfig(parse.GetValue(config), parse.GetValue(sets) ?? []);
            var c = ParameterCount.Of(cfg.Model);
            var output = parse.InvocationConfiguration.Output;
            var choices = n is int devices ? MemoryPlan.All(cfg, devices) : null;
            // The CPU estimate in the dtype this machine's CPU would train in (train.dtype auto resolves by CPUID).
            var host = MemoryPlan.Host(cfg, ZCode.Runtime.ComputeDevice.Dtype(cfg.Train.Dtype, TorchSharp.torch.CPU) ==
                                            TorchSharp.torch.ScalarType.BFloat16 ? 2 : 4);
            var recommended = choices is not null && memory is double gib ? MemoryPlan.Recommend(choices, gib) : null;
            if (parse.GetValue(json))
            {
                var report = new Dictionary<string, object?>
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
                };
                report["cpu_memory"] = new Dictionary<string, object?>
                {
                    ["dtype"] = host.ComputeBytes == 2 ? "bf16" : "fp32", ["parameter_bytes"] = host.Parameters,
                    ["compute_weight_bytes"] = host.ComputeWeights, ["gradient_bytes"] = host.Gradients,
                    ["optimizer_bytes"] = host.OptimizerState, ["ema_bytes"] = host.Ema, ["activation_bytes"] = host.Activations,
                    ["runtime_bytes"] = host.Runtime, ["total_bytes"] = host.Total,
                };
                if (choices is not null)
                    report["memory"] = MemoryJson(cfg, n!.Value, memory, choices, recommended);
                output.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
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
            output.WriteLine();
            output.WriteLine($"CPU memory of one process (GiB, {(host.ComputeBytes == 2 ? "bf16" : "fp32")} compute, " +
                             $"{cfg.Train.TokensPerBatch / Math.Max(1, cfg.Train.GradAccumulation):N0} tokens per micro-batch): " +
                             $"params {G(host.Parameters)}, bf16 w {G(host.ComputeWeights)}, grads {G(host.Gradients)}, " +
                             $"AdamW {G(host.OptimizerState)}, EMA {G(host.Ema)}, activations {G(host.Activations)}, " +
                             $"runtime {G(host.Runtime)}; total {G(host.Total)}");
            if (choices is not null)
                PrintMemory(output, cfg, n!.Value, memory, choices, recommended);
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static void PrintMemory(TextWriter output, ZCode.Config.ZCodeConfig cfg, int n, double? memory,
        IReadOnlyList<MemoryEstimate> choices, MemoryEstimate? recommended)
    {
        var inputs = MemoryPlan.Inputs(cfg, n);
        output.WriteLine();
        output.WriteLine($"memory per device on {n} device{(n == 1 ? "" : "s")}{(memory is double g ? $" of {g:0.##} GiB" : "")} " +
                         $"(GiB; train.dtype {cfg.Train.Dtype}, {inputs.MicroBatchTokens:N0} tokens per device and micro-batch = " +
                         $"tokens_per_batch {cfg.Train.TokensPerBatch:N0} / (grad_accumulation {cfg.Train.GradAccumulation} x {n})):");
        output.WriteLine($"  {"zero",4} {"offload",7} {"EP",5} {"params",8} {"bf16 w",8} {"grads",8} {"optim",8} {"activ",8} {"reserve",8} {"total",8} {"host",8}" +
                         (memory is null ? "" : "  fits"));
        foreach (var x in choices)
        {
            string mark = memory is double gib ? (MemoryPlan.Fits(x, gib) ? "  yes" : "  no") : "";
            if (ReferenceEquals(x, recommended)) mark += "  <- recommended";
            output.WriteLine($"  {x.ZeroStage,4} {(x.OffloadOptimizer ? "yes" : "no"),7} {x.ExpertParallel,5} {G(x.Parameters),8} {G(x.ComputeWeights),8} " +
                             $"{G(x.Gradients),8} {G(x.OptimizerState),8} {G(x.Activations),8} {G(x.Reserve),8} {G(x.Total),8} {G(x.HostOptimizer),8}{mark}");
        }
        output.WriteLine("  params: fp32 weights (the master copy); bf16 w: bf16 compute copies; optim: AdamW state on the device; " +
                         "host: offloaded optimizer state in host memory per rank; activations: upper bound, no checkpointing " +
                         "(formulas: README, `zcode plan`)");
        if (memory is null) return;
        if (recommended is null)
            output.WriteLine($"nothing fits in {memory:0.##} GiB per device: use more devices, a smaller train.tokens_per_batch or a " +
                             "larger train.grad_accumulation");
        else
            output.WriteLine($"recommended: --set parallel.zero_stage={recommended.ZeroStage} --set parallel.offload_optimizer=" +
                             $"{(recommended.OffloadOptimizer ? "true" : "false")} --set parallel.expert_parallel={recommended.ExpertParallel} " +
                             "(the fitting choice with the least communication: no offload, lowest ZeRO stage, smallest expert parallelism)");
    }

    private static Dictionary<string, object?> MemoryJson(ZCode.Config.ZCodeConfig cfg, int n, double? memory,
        IReadOnlyList<MemoryEstimate> choices, MemoryEstimate? recommended)
    {
        var inputs = MemoryPlan.Inputs(cfg, n);
        Dictionary<string, object?> Choice(MemoryEstimate x) => new()
        {
            ["zero_stage"] = x.ZeroStage, ["offload_optimizer"] = x.OffloadOptimizer, ["expert_parallel"] = x.ExpertParallel,
            ["parameter_bytes"] = x.Parameters, ["compute_weight_bytes"] = x.ComputeWeights, ["gradient_bytes"] = x.Gradients,
            ["optimizer_bytes"] = x.OptimizerState, ["activation_bytes"] = x.Activations, ["reserve_bytes"] = x.Reserve,
            ["total_bytes"] = x.Total, ["host_optimizer_bytes"] = x.HostOptimizer,
            ["fits"] = memory is double g ? MemoryPlan.Fits(x, g) : null,
        };
        return new Dictionary<string, object?>
        {
            ["gpus"] = n, ["gpu_memory_gib"] = memory, ["dtype"] = cfg.Train.Dtype,
            ["tokens_per_device"] = inputs.MicroBatchTokens,
            ["activation_elements_per_token"] = inputs.ActivationElementsPerToken,
            ["activation_fp32_bytes_per_token"] = inputs.ActivationFp32BytesPerToken,
            ["choices"] = choices.Select(Choice).ToList(),
            ["recommended"] = recommended is null ? null : Choice(recommended),
        };
    }

    private static string G(long bytes) => (bytes / (double)MemoryPlan.GiB).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture);

    private static string Human(long n) => n switch
    {
        >= 1_000_000_000 => $"{n / 1e9:F2}B",
        >= 1_000_000 => $"{n / 1e6:F1}M",
        >= 1_000 => $"{n / 1e3:F1}K",
        _ => n.ToString(),
    };
}
