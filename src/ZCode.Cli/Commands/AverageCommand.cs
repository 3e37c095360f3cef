using System.CommandLine;
using ZCode.Checkpoints;

namespace ZCode.Cli.Commands;

/// <summary>`zcode average`: the element-wise mean of checkpoints' weights (named, or the last/best N of a run).</summary>
internal static class AverageCommand
{
    public static Command Create()
    {
        var checkpoints = new Argument<string[]>("CKPT") { Description = "checkpoints to average", Arity = ArgumentArity.ZeroOrMore };
        var run = new Option<string?>("--run") { Description = "run directory whose checkpoints to average (with --last or --best)", HelpName = "DIR" };
        var last = new Option<int?>("--last") { Description = "the newest N step checkpoints of --run" };
        var best = new Option<int?>("--best") { Description = "the N step checkpoints of --run with the best validations (train.best_metric)" };
        var output = new Option<string>("--out") { Description = "new checkpoint directory (must not exist)", Required = true };
        var cmd = new Command("average", "Average the weights of checkpoints (experts by global id); the result loads in eval, translate and --init-from")
        {
            checkpoints, run, last, best, output,
        };
        cmd.SetAction(parse =>
        {
            var named = parse.GetValue(checkpoints) ?? [];
            var (dir, nLast, nBest) = (parse.GetValue(run), parse.GetValue(last), parse.GetValue(best));
            IReadOnlyList<string> inputs = (dir, nLast, nBest, named.Length) switch
            {
                (null, null, null, > 0) => named,
                (not null, int n, null, 0) => CheckpointAveraging.Last(dir, n),
                (not null, null, int n, 0) => CheckpointAveraging.Best(dir, n),
                _ => throw new UserInputException("average: give either checkpoints (CKPT...), or --run DIR with one of --last N and --best N"),
            };
            CheckpointAveraging.Average(inputs, parse.GetValue(output)!);
            var stdout = parse.InvocationConfiguration.Output;
            stdout.WriteLine($"averaged {inputs.Count} checkpoints:");
            foreach (var i in inputs) stdout.WriteLine($"  {i}");
            stdout.WriteLine($"wrote {Path.GetFullPath(parse.GetValue(output)!)} (weights only)");
            return CliApp.ExitOk;
        });
        return cmd;
    }
}
