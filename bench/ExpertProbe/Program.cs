// Measures checkpoints for bench/expert-surgery.sh and bench/pruned-decode.sh: token-level validation NLL on the
// config's data.valid, and greedy decoding time over the first validation sentences. The data comes from the prepared
// shards (prepared here first when missing or stale, as zcode train does); progress goes to stderr, results to stdout.
//   ExpertProbe valid-loss CKPT
//   ExpertProbe decode-time CKPT [CKPT ...] [--sentences N] [--passes P] [--max-len L] [--beam B] [--batch-tokens T]
// decode-time loads every checkpoint first and then alternates passes between them, so machine noise hits all
// alike; per checkpoint it reports the best pass (seconds and output tokens per second).
using System.Diagnostics;
using System.Text.Json.Nodes;
using TorchSharp;
using ZCode.Checkpoints;
using ZCode.Config;
using ZCode.Data;
using ZCode.Data.Shards;
using ZCode.Evaluation;
using ZCode.Model.Moe;

if (args.Length < 2 || args[0] is not ("valid-loss" or "decode-time"))
{
    Console.Error.WriteLine("usage: ExpertProbe valid-loss CKPT | decode-time CKPT [CKPT ...] [--sentences N] [--passes P] [--max-len L] [--beam B] [--batch-tokens T]");
    return 2;
}
torch.set_num_threads(1);

static DataSource ValidData(ZCodeConfig config) => DataSource.FromShards(config, new StderrProgress(), r =>
    Console.Error.WriteLine(r.UpToDate ? $"data: shards up to date in {r.IndexPath}"
                                       : $"data: prepared shards in {r.IndexPath} ({r.Lines} lines, {r.Seconds:F1} s)"));

if (args[0] == "valid-loss")
{
    var ckpt = CheckpointReader.Load(args[1]);
    var data = ValidData(ckpt.Config);
    Console.WriteLine(new JsonObject
    {
        ["checkpoint"] = ckpt.Directory, ["experts"] = ckpt.Config.Model.Moe.Experts, ["step"] = ckpt.Step,
        ["valid_nll"] = ModelProbe.ValidNll(ckpt.Model, data.ValidSets.SelectMany(s => data.ValidBatches(s))),
    }.ToJsonString());
    return 0;
}

int Option(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
}
int sentences = Option("--sentences", 64), passes = Option("--passes", 3), maxLen = Option("--max-len", 40);
int beam = Option("--beam", 1), batchTokens = Option("--batch-tokens", 512);
var paths = args.Skip(1).TakeWhile(a => !a.StartsWith("--")).ToList();
var probes = paths.Select(p =>
{
    var ckpt = CheckpointReader.Load(p);
    var data = ValidData(ckpt.Config);
    var batches = data.ValidBatches(data.ValidSets[0], batchTokens).ToList();
    return new Probe(ckpt, data.Tokenizer, batches);
}).ToArray();

// Beam search (greedy at beam 1; incremental decoder with KV cache), at most maxLen tokens per sentence. Hooks on the
// MoE layers time them and count, per call, the experts that received at least one token: the packed expert path reads
// only those experts' weights, so that count is what pruning can lower.
var search = new BeamSearchOptions { Beam = beam, MaxLenA = 0, MaxLenB = maxLen };
var warm = new BeamSearchOptions { Beam = beam, MaxLenA = 0, MaxLenB = 8 };
foreach (var p in probes)
    foreach (var layer in p.Ckpt.Model.MoeLayers)
    {
        layer.register_forward_pre_hook((_, _, _) => { p.MoeClock.Start(); return null; });
        layer.register_forward_hook((m, _, _, _) =>
        {
            p.MoeClock.Stop();
            p.MoeCalls++;
            p.ExpertsTouched += ((MoeLayer)m).LastStats!.TokensPerExpert.Count(c => c > 0);
            return null;
        });
    }
for (int pass = -1; pass < passes; pass++)
{
    foreach (var p in probes)
    {
        using var scope = torch.NewDisposeScope();
        if (pass < 0) // warm-up
        {
            var b0 = p.Batches[0];
            BatchedDecoder.Decode(p.Ckpt.Model, b0.Examples.Select(e => e.Source).ToList(), p.Tok.BosId, p.Tok.EosId, warm, b0.Size);
            continue;
        }
        int done = 0;
        long tokens = 0;
        p.MoeClock.Reset();
        (p.MoeCalls, p.ExpertsTouched) = (0, 0);
        var clock = Stopwatch.StartNew();
        foreach (var b in p.Batches)
        {
            if (done >= sentences) break;
            using var batchScope = torch.NewDisposeScope();
            var hyps = BatchedDecoder.Decode(p.Ckpt.Model, b.Examples.Select(e => e.Source).ToList(), p.Tok.BosId, p.Tok.EosId, search, b.Size);
            tokens += hyps.Sum(h => (long)h.Tokens.Length);
            done += b.Size;
        }
        double seconds = clock.Elapsed.TotalSeconds;
        if (seconds < p.Best)
            (p.Best, p.Tokens, p.Done, p.MoeSeconds, p.TouchedPerCall) =
                (seconds, tokens, done, p.MoeClock.Elapsed.TotalSeconds, (double)p.ExpertsTouched / Math.Max(1, p.MoeCalls));
    }
}
foreach (var p in probes)
    Console.WriteLine(new JsonObject
    {
        ["checkpoint"] = p.Ckpt.Directory, ["experts"] = p.Ckpt.Config.Model.Moe.Experts, ["step"] = p.Ckpt.Step,
        ["beam"] = beam, ["batch_tokens"] = batchTokens,
        ["sentences"] = p.Done, ["output_tokens"] = p.Tokens, ["decode_seconds"] = Math.Round(p.Best, 3),
        ["tokens_per_s"] = Math.Round(p.Tokens / p.Best, 1), ["moe_seconds"] = Math.Round(p.MoeSeconds, 3),
        ["experts_touched_per_moe_call"] = Math.Round(p.TouchedPerCall, 2),
    }.ToJsonString());
return 0;

/// <summary>One checkpoint under test, with its best pass and the MoE hooks' counters.</summary>
sealed class Probe(LoadedCheckpoint ckpt, ZCode.Text.SpmTokenizer tok, List<Batch> batches)
{
    public LoadedCheckpoint Ckpt { get; } = ckpt;
    public ZCode.Text.SpmTokenizer Tok { get; } = tok;
    public List<Batch> Batches { get; } = batches;
    public Stopwatch MoeClock { get; } = new();
    public long MoeCalls;
    public long ExpertsTouched;
    public double Best = double.MaxValue, MoeSeconds, TouchedPerCall;
    public long Tokens;
    public int Done;
}

/// <summary>data prepare's progress on stderr, a line every 5 s (stdout carries the JSON results).</summary>
sealed class StderrProgress : IProgress<PrepareProgress>
{
    private double _last = double.NegativeInfinity;

    public void Report(PrepareProgress p)
    {
        if (p.Seconds - _last < 5) return;
        Console.Error.WriteLine($"prepare {p.Describe()}");
        _last = p.Seconds;
    }
}
