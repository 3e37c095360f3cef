using System.CommandLine;
using System.Text.Json;
using TorchSharp;
using ZCode.Benchmarks;

namespace ZCode.Cli.Commands;

/// <summary>`zcode bench moe|train|comm`: throughput measurements (see bench/RESULTS.md for recorded figures).</summary>
internal static class BenchCommand
{
    public static Command Create() => new("bench", "Benchmarks: one MoE layer (index vs einsum dispatch), full training steps, collectives")
    {
        Moe(), Train(), BenchCommCommand.Create(),
    };

    private static Option<int> Int(string name, string description, int? defaultValue = null)
    {
        var o = new Option<int>(name) { Description = description, Required = defaultValue is null };
        if (defaultValue is int v) o.DefaultValueFactory = _ => v;
        return o;
    }

    private static Option<int> Threads() => Int("--threads", "intra-op CPU threads (0 = all cores)", 0);
    private static Option<bool> Json() => new("--json") { Description = "print one JSON line" };

    private static Command Moe()
    {
        var tokens = Int("--tokens", "tokens S routed by the layer");
        var d = Int("--d", "model width d");
        var ffn = Int("--ffn", "expert hidden width");
        var experts = Int("--experts", "experts E");
        var topK = Int("--top-k", "choices per token (1 or 2)");
        var cf = new Option<double>("--capacity-factor") { Description = "capacity factor", DefaultValueFactory = _ => 1.25 };
        var repeats = Int("--repeats", "timed repetitions of each path (median reported)", 5);
        var threads = Threads();
        var json = Json();
        var expertParallel = new Option<bool>("--expert-parallel")
        {
            Description = "split the experts over every rank of an MPI launch (mpirun -np P, P dividing --experts) and time the " +
                          "layer with its all-to-alls against the same layer with all experts on each rank; --tokens is per rank",
        };
        var backend = new Option<string>("--backend")
        {
            Description = "with --expert-parallel: auto | mpi | nccl", DefaultValueFactory = _ => "auto",
        };
        var cmd = new Command("moe", "Forward+backward time of one MoE layer: index dispatch vs one-hot einsum dispatch, " +
                                     "or (--expert-parallel, under mpirun) experts split over the ranks vs replicated")
            { tokens, d, ffn, experts, topK, cf, repeats, threads, json, expertParallel, backend };
        cmd.SetAction(parse =>
        {
            var o = new MoeBenchOptions(Positive(parse.GetValue(tokens), "--tokens"), Positive(parse.GetValue(d), "--d"),
                Positive(parse.GetValue(ffn), "--ffn"), Positive(parse.GetValue(experts), "--experts"),
                parse.GetValue(topK), parse.GetValue(cf), Positive(parse.GetValue(repeats), "--repeats"));
            if (o.TopK < 1 || o.TopK > 2 || o.TopK > o.Experts)
                throw new UserInputException($"--top-k: must be 1 or 2 and at most --experts, got {o.TopK}");
            if (parse.GetValue(expertParallel))
                return ExpertParallelMoe(parse, o, threads, json, backend);
            if (!(o.CapacityFactor > 0) || double.IsInfinity(o.CapacityFactor))
                throw new UserInputException($"--capacity-factor: must be greater than 0 (the einsum reference needs a finite capacity), got {o.CapacityFactor}");
            SetThreads(parse.GetValue(threads));
            var r = MoeLayerBenchmark.Run(o);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["tokens"] = o.Tokens, ["d"] = o.DModel, ["ffn"] = o.FfnDim, ["experts"] = o.Experts, ["top_k"] = o.TopK,
                    ["capacity_factor"] = o.CapacityFactor, ["capacity"] = r.Capacity, ["threads"] = torch.get_num_threads(),
                    ["repeats"] = o.Repeats,
                    ["ms_index"] = Math.Round(r.MsIndex, 2), ["ms_einsum"] = Math.Round(r.MsEinsum, 2),
                    ["speedup"] = Math.Round(r.Speedup, 3),
                    ["bytes_index"] = r.BytesIndex, ["bytes_einsum"] = r.BytesEinsum,
                    ["max_abs_diff"] = r.MaxAbsDiff,
                }));
            }
            else
            {
                output.WriteLine($"S={o.Tokens} d={o.DModel} ffn={o.FfnDim} E={o.Experts} top-{o.TopK} cf={o.CapacityFactor} C={r.Capacity}, " +
                                 $"{torch.get_num_threads()} threads, median of {o.Repeats} forward+backward:");
                output.WriteLine($"  index dispatch  {r.MsIndex,10:F1} ms   dispatch tensors {r.BytesIndex / 1048576.0,10:F2} MiB");
                output.WriteLine($"  einsum dispatch {r.MsEinsum,10:F1} ms   dispatch tensors {r.BytesEinsum / 1048576.0,10:F2} MiB");
                output.WriteLine($"  speedup {r.Speedup:F2}x, memory {(double)r.BytesEinsum / Math.Max(1, r.BytesIndex):F1}x less, max |diff| {r.MaxAbsDiff:E1}");
            }
            return CliApp.ExitOk;
        });
        return cmd;
    }

    /// <summary>`bench moe --expert-parallel`: every rank runs it; rank 0 prints.</summary>
    private static int ExpertParallelMoe(ParseResult parse, MoeBenchOptions o, Option<int> threads, Option<bool> json, Option<string> backend)
    {
        if (!(o.CapacityFactor >= 0) || double.IsInfinity(o.CapacityFactor))
            throw new UserInputException($"--capacity-factor: must be finite and at least 0 (0 = no dropping), got {o.CapacityFactor}");
        var name = parse.GetValue(backend)!;
        if (name is not ("auto" or "mpi" or "nccl"))
            throw new UserInputException($"--backend: expected auto, mpi or nccl, got '{name}'");
        var launch = ZCode.Parallel.LaunchEnvironment.Current();
        if (launch.WorldSize < 2)
            throw new UserInputException("--expert-parallel: splits the experts over the ranks of an MPI launch; start it with " +
                                         "mpirun -np P (P >= 2 dividing --experts)");
        if (o.Experts % launch.WorldSize != 0)
            throw new UserInputException($"--experts: {o.Experts} experts cannot be split over {launch.WorldSize} ranks; use a multiple of {launch.WorldSize}");
        // The cores of a node are shared among its ranks unless --threads says otherwise.
        SetThreads(parse.GetValue(threads) > 0 ? parse.GetValue(threads) : Math.Max(1, Environment.ProcessorCount / Math.Max(1, launch.LocalSize)));
        bool cuda = name == "nccl" || (name == "auto" && torch.cuda.is_available());
        CheckBackend(name, cuda, launch);
        using var comm = ZCode.Parallel.Communicators.Create(name, TimeSpan.FromSeconds(new ZCode.Config.ParallelConfig().TimeoutS), cuda, launch);
        var device = comm.Device;
        var r = ExpertParallelMoeBenchmark.Run(comm, o, device);
        if (comm.Rank != 0) return CliApp.ExitOk;
        var output = parse.InvocationConfiguration.Output;
        if (parse.GetValue(json))
        {
            output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["backend"] = comm.Backend, ["ranks"] = r.Ranks, ["tokens_per_rank"] = o.Tokens, ["d"] = o.DModel, ["ffn"] = o.FfnDim,
                ["experts"] = o.Experts, ["experts_per_rank"] = o.Experts / r.Ranks, ["top_k"] = o.TopK,
                ["capacity_factor"] = o.CapacityFactor, ["capacity"] = r.Capacity, ["threads"] = torch.get_num_threads(),
                ["repeats"] = o.Repeats, ["ms_expert_parallel"] = Math.Round(r.MsExpertParallel, 3),
                ["ms_replicated"] = Math.Round(r.MsReplicated, 3), ["ms_all_to_all"] = Math.Round(r.MsAllToAll, 3),
                ["all_to_all_bytes"] = r.AllToAllBytes, ["max_abs_diff"] = r.MaxAbsDiff,
            }));
            return CliApp.ExitOk;
        }
        output.WriteLine($"expert parallel over {r.Ranks} ranks ({comm.Backend}): S={o.Tokens} per rank, d={o.DModel} ffn={o.FfnDim} " +
                         $"E={o.Experts} ({o.Experts / r.Ranks} per rank) top-{o.TopK} cf={o.CapacityFactor} C={r.Capacity}, " +
                         $"{torch.get_num_threads()} threads per rank; median of {o.Repeats}, slowest rank:");
        output.WriteLine($"  experts split (2+2 all-to-alls)  {r.MsExpertParallel,10:F2} ms forward+backward");
        output.WriteLine($"  experts replicated               {r.MsReplicated,10:F2} ms forward+backward");
        output.WriteLine($"  one all-to-all of [E, C, d]      {r.MsAllToAll,10:F2} ms ({r.AllToAllBytes / 1048576.0:F2} MiB per rank)");
        output.WriteLine($"  max |output difference| {r.MaxAbsDiff:E1}");
        return CliApp.ExitOk;
    }

    private static Command Train()
    {
        var config = CommonOptions.ConfigOption();
        var sets = CommonOptions.SetOption();
        var batch = Int("--batch", "sentences per step", 16);
        var srcLen = Int("--src-len", "source tokens per sentence", 64);
        var tgtLen = Int("--tgt-len", "target tokens per sentence", 64);
        var steps = Int("--steps", "timed steps (median reported)", 20);
        var warmup = Int("--warmup", "untimed warm-up steps first (JIT tiering and kernel caches settle)", TrainBenchOptions.DefaultWarmup);
        var threads = Threads();
        var device = new Option<string?>("--device") { Description = "auto | cpu | cuda | cuda:N (default: the config's train.device)", HelpName = "DEVICE" };
        var dtype = new Option<string?>("--dtype") { Description = "fp32 | bf16 (default: the config's train.dtype)", HelpName = "DTYPE" };
        var json = Json();
        var profile = new Option<bool>("--profile") { Description = "also time every phase of the step (attention, FFN, MoE router/dispatch/experts, loss, backward, optimizer)" };
        var cmd = new Command("train", "Time the trainer's full training steps (forward, backward, clipping, AdamW) on random tokens")
            { config, sets, batch, srcLen, tgtLen, steps, warmup, threads, device, dtype, json, profile };
        cmd.SetAction(parse =>
        {
            // --device/--dtype are train.device/train.dtype overrides, validated like --set.
            var overrides = (parse.GetValue(sets) ?? []).ToList();
            if (parse.GetValue(device) is { } dev) overrides.Add($"train.device={dev}");
            if (parse.GetValue(dtype) is { } dt) overrides.Add($"train.dtype={dt}");
            if (parse.GetValue(threads) is > 0 and var n) overrides.Add($"train.threads={n}");
            var cfg = CommonOptions.LoadConfig(parse.GetValue(config), [.. overrides]);
            var o = new TrainBenchOptions(Positive(parse.GetValue(batch), "--batch"), Positive(parse.GetValue(srcLen), "--src-len"),
                Positive(parse.GetValue(tgtLen), "--tgt-len"), Positive(parse.GetValue(steps), "--steps"),
                NonNegative(parse.GetValue(warmup), "--warmup"), parse.GetValue(profile));
            if (parse.GetValue(threads) < 0) throw new UserInputException($"--threads: must be at least 0, got {parse.GetValue(threads)}");
            if (Math.Max(o.SrcLen, o.TgtLen) > cfg.Model.MaxPositions)
                throw new UserInputException($"--src-len/--tgt-len: must be at most model.max_positions ({cfg.Model.MaxPositions}), " +
                                             $"got {o.SrcLen}/{o.TgtLen}");
            if (cfg.Model.VocabSize <= RandomTokenBatches.FirstRegularId)
                throw new UserInputException($"model.vocab_size: must be greater than {RandomTokenBatches.FirstRegularId} for random " +
                                             $"tokens, got {cfg.Model.VocabSize}");
            var r = TrainStepBenchmark.Run(cfg, o);
            // Model FLOPs utilisation against the same device's matmul rate in the compute dtype (the machine's bf16 rate
            // where bf16 is fast, else fp32's), probed after every timed step.
            double modelFlop = ZCode.Model.ModelFlops.TrainingStep(cfg.Model, o.Batch, o.SrcLen, o.TgtLen);
            double modelGflop = modelFlop / 1e9;
            double achieved = modelGflop / (r.StepMs / 1000.0);
            double rate = BenchStats.Median(r.MatmulGflops), bestRate = r.MatmulGflops.Max();
            double mfu = r.Utilisation(modelFlop);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                var report = new Dictionary<string, object>
                {
                    ["batch"] = o.Batch, ["src_len"] = o.SrcLen, ["tgt_len"] = o.TgtLen, ["steps"] = o.Steps, ["warmup"] = o.Warmup,
                    ["threads"] = torch.get_num_threads(), ["dtype"] = ZCode.Runtime.ComputeDevice.DtypeName(r.Dtype),
                    ["device"] = r.Device, ["params"] = r.Params,
                    ["tokens_per_step"] = r.TokensPerStep, ["step_ms"] = Math.Round(r.StepMs, 2),
                    ["tokens_per_s"] = Math.Round(r.TokensPerSecond, 1), ["loss"] = Math.Round(r.LastLoss, 4),
                    ["model_gflop_per_step"] = Math.Round(modelGflop, 3), ["model_gflops"] = Math.Round(achieved, 1),
                    ["matmul_gflops"] = Math.Round(rate, 1), ["matmul_gflops_best"] = Math.Round(bestRate, 1),
                    ["mfu"] = Math.Round(mfu, 4), ["mfu_of_best"] = Math.Round(achieved / bestRate, 4),
                    ["step_ms_all"] = r.StepTimesMs.Select(t => Math.Round(t, 2)).ToArray(),
                    ["matmul_gflops_all"] = r.MatmulGflops.Select(g => Math.Round(g, 1)).ToArray(),
                };
                if (r.PhaseMs is { } phases) report["profile_ms"] = phases.ToDictionary(p => p.Key, p => Math.Round(p.Value, 2));
                output.WriteLine(JsonSerializer.Serialize(report));
            }
            else
            {
                output.WriteLine($"{r.Params:N0} parameters, batch {o.Batch} x ({o.SrcLen} + {o.TgtLen}) tokens, {r.Device}, {torch.get_num_threads()} threads:");
                output.WriteLine($"  median step {r.StepMs:F1} ms over {o.Steps} steps, {r.TokensPerSecond:N0} tokens/s");
                output.WriteLine($"  model {modelGflop:F1} GFLOP per step = {achieved:F0} GFLOP/s; a 2048^3 matmul in " +
                                 $"{ZCode.Runtime.ComputeDevice.DtypeName(r.Dtype)} after each step ran at {rate:F0} GFLOP/s (median; best {bestRate:F0})");
                output.WriteLine($"  model FLOPs utilisation {mfu:P1} (median of each step against its own matmul; {achieved / bestRate:P1} of the best)");
                if (r.PhaseMs is { } phases)
                {
                    output.WriteLine($"  {"phase (ms per step; nested phases are inside their parent)",-62} {"ms",8} {"share",7}");
                    foreach (var (name, ms) in phases.OrderByDescending(p => p.Value))
                        output.WriteLine($"  {name,-62} {ms,8:F1} {ms / r.StepMs,7:P1}");
                }
            }
            return CliApp.ExitOk;
        });
        return cmd;
    }

    /// <summary>--backend against the launch (a torchrun launcher, local with several ranks, ...): exit 2, not a failure later.</summary>
    internal static void CheckBackend(string name, bool cuda, ZCode.Parallel.LaunchEnvironment launch)
    {
        if (ZCode.Parallel.Communicators.Problem(name, cuda, launch) is { } problem)
            throw new UserInputException($"--backend {name}: {problem}");
    }

    private static int Positive(int value, string name)
        => value >= 1 ? value : throw new UserInputException($"{name}: must be at least 1, got {value}");

    private static int NonNegative(int value, string name)
        => value >= 0 ? value : throw new UserInputException($"{name}: must be at least 0, got {value}");

    private static void SetThreads(int threads)
    {
        if (threads < 0) throw new UserInputException($"--threads: must be at least 0, got {threads}");
        torch.set_num_threads(threads > 0 ? threads : Environment.ProcessorCount);
    }
}
