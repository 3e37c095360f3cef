using System.CommandLine;
using System.Text.Json;
using TorchSharp;
using ZCode.Benchmarks;
using ZCode.Parallel;

namespace ZCode.Cli.Commands;

/// <summary>`zcode bench comm`: every collective on the configured backend, verified and timed (like nccl-tests).</summary>
internal static class BenchCommCommand
{
    private static readonly Dictionary<string, torch.ScalarType> Dtypes = new()
    {
        ["float32"] = torch.ScalarType.Float32, ["float64"] = torch.ScalarType.Float64, ["int32"] = torch.ScalarType.Int32,
        ["int64"] = torch.ScalarType.Int64, ["bfloat16"] = torch.ScalarType.BFloat16, ["float16"] = torch.ScalarType.Float16,
    };

    public static Command Create()
    {
        var config = CommonOptions.ConfigOption();
        var sets = CommonOptions.SetOption();
        var sizeMb = new Option<double>("--size-mb") { Description = "MiB per collective call (the larger buffer)", DefaultValueFactory = _ => 16 };
        var iters = new Option<int>("--iters") { Description = "timed iterations per collective (after 1 warm-up)", DefaultValueFactory = _ => 20 };
        var backend = new Option<string?>("--backend") { Description = "auto | local | mpi | nccl (default: parallel.backend of the config)" };
        var dtype = new Option<string>("--dtype") { Description = "element type: " + string.Join(" | ", Dtypes.Keys), DefaultValueFactory = _ => "float32" };
        var maxChunk = new Option<long>("--max-chunk")
        {
            Description = "mpi: largest count per MPI call (default 2^31-1); small values exercise the path of transfers over 2^31 elements",
            DefaultValueFactory = _ => int.MaxValue,
        };
        var json = new Option<bool>("--json") { Description = "print one JSON line (rank 0)" };
        var failRank = new Option<int>("--fail-rank")
        {
            Description = "diagnostic: rank R fails after the first verified collective (see --fail-mode), to check that the " +
                          "whole job then ends with the failure named (default: none)",
            DefaultValueFactory = _ => -1,
        };
        var failMode = new Option<string>("--fail-mode")
        {
            Description = "how --fail-rank fails: raise (an error: the job aborts at once naming the rank), stall (stops " +
                          "responding: the others time out after parallel.timeout_s), kill (SIGKILL to itself)",
            DefaultValueFactory = _ => "raise",
        };
        var cmd = new Command("comm", "Run, verify and time every collective (all-reduce, reduce-scatter, all-gather, all-to-all, " +
                                      "all-to-all-v, broadcast, barrier) on the parallel backend; start it with mpirun for several ranks")
            { config, sets, sizeMb, iters, backend, dtype, maxChunk, json, failRank, failMode };
        cmd.SetAction(parse =>
        {
            var cfg = CommonOptions.LoadConfig(parse.GetValue(config), parse.GetValue(sets) ?? []);
            double mb = parse.GetValue(sizeMb);
            if (!(mb > 0) || mb > 1 << 20) throw new UserInputException($"--size-mb: must be greater than 0 and at most 1048576, got {mb}");
            int iterations = parse.GetValue(iters);
            if (iterations < 1) throw new UserInputException($"--iters: must be at least 1, got {iterations}");
            var dtypeName = parse.GetValue(dtype)!;
            if (!Dtypes.TryGetValue(dtypeName, out var scalar))
                throw new UserInputException($"--dtype: expected one of {string.Join(", ", Dtypes.Keys)}, got '{dtypeName}'");
            long chunk = parse.GetValue(maxChunk);
            if (chunk < 1 || chunk > int.MaxValue) throw new UserInputException($"--max-chunk: must be in 1..{int.MaxValue}, got {chunk}");
            var name = parse.GetValue(backend) ?? cfg.Parallel.Backend;
            if (!ZCode.Config.ConfigValidator.Backends.Contains(name))
                throw new UserInputException($"--backend: expected one of {string.Join(", ", ZCode.Config.ConfigValidator.Backends)}, got '{name}'");

            var launch = LaunchEnvironment.Current();
            bool cuda = name == "nccl" || (name == "auto" && launch.WorldSize > 1 && torch.cuda.is_available());
            BenchCommand.CheckBackend(name, cuda, launch);
            MpiCommunicator.MaxChunk = chunk;
            using var comm = Communicators.Create(name, TimeSpan.FromSeconds(cfg.Parallel.TimeoutS), cuda, launch);
            var device = comm.Device;
            int fail = parse.GetValue(failRank);
            if (fail < -1 || fail >= comm.Size) throw new UserInputException($"--fail-rank: must be a rank below {comm.Size} (or -1 for none), got {fail}");
            var mode = parse.GetValue(failMode)!;
            if (!Enum.TryParse<CommBenchFailure>(mode, ignoreCase: true, out var failure) || mode != mode.ToLowerInvariant())
                throw new UserInputException($"--fail-mode: expected raise, stall or kill, got '{mode}'");
            var options = new CommBenchOptions((long)(mb * 1048576), iterations, scalar, FailRank: fail, FailMode: failure);
            List<CommBenchRow> rows;
            try
            {
                rows = CommBenchmark.Run(comm, options, device);
            }
            catch (CommVerificationException e)
            {
                // Every rank agreed on the failure, so every rank exits 1 normally (no job abort needed).
                parse.InvocationConfiguration.Error.WriteLine($"zcode: {e.Message}");
                return CliApp.ExitRuntime;
            }
            if (comm.Rank != 0) return CliApp.ExitOk;
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["backend"] = comm.Backend, ["ranks"] = comm.Size, ["dtype"] = dtypeName, ["bytes"] = options.Bytes,
                    ["iters"] = iterations, ["verified"] = true,
                    ["collectives"] = rows.Select(r => new Dictionary<string, object>
                    {
                        ["name"] = r.Collective, ["bytes"] = r.Bytes, ["ms"] = Math.Round(r.Ms, 4),
                        ["algbw_gbps"] = Math.Round(r.AlgGBps, 3), ["busbw_gbps"] = Math.Round(r.BusGBps, 3), ["verified"] = true,
                    }).ToList(),
                }));
                return CliApp.ExitOk;
            }
            output.WriteLine($"bench comm: backend {comm.Backend}, {comm.Size} rank{(comm.Size == 1 ? "" : "s")}, {dtypeName}, " +
                             $"{options.Bytes / 1048576.0:0.###} MiB per call, mean of {iterations} iteration{(iterations == 1 ? "" : "s")} on the slowest rank");
            output.WriteLine($"  {"collective",-15} {"bytes",12} {"time ms",10} {"algbw GB/s",11} {"busbw GB/s",11}  check");
            foreach (var r in rows)
                output.WriteLine($"  {r.Collective,-15} {r.Bytes,12} {r.Ms,10:F3} {r.AlgGBps,11:F2} {r.BusGBps,11:F2}  ok");
            output.WriteLine($"all {rows.Count} collectives verified on every rank");
            return CliApp.ExitOk;
        });
        return cmd;
    }
}
