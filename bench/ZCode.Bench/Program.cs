using System.Diagnostics;
using TorchSharp;
using ZCode.Config;
using ZCode.Evaluation;
using ZCode.Model;

// Beam search with and without the key/value cache on m3-tiny shapes (configs/m3-tiny.yaml, random weights):
// every hypothesis is forced to exactly --out tokens (min length = max length), so both paths do the same steps.
// Usage: dotnet run -c Release --project bench/ZCode.Bench -- [--sentences 16] [--src-len 30] [--out 64] [--beam 4]
//        [--threads 0] [--repeats 3] [--eval-capacity-factor 2]
var args_ = Args.Parse(args);
int threads = args_.Get("threads", 0);
torch.set_num_threads(threads > 0 ? threads : Environment.ProcessorCount);
torch.manual_seed(1);
// --eval-capacity-factor 0 turns off MoE dropping in evaluation: then routing is per token and both paths must agree
// exactly; with m3-tiny's 2.0, which tokens an expert drops depends on which tokens are routed together.
var cfg = ConfigLoader.LoadDefault([$"model.moe.eval_capacity_factor={args_.Get("eval-capacity-factor", 2)}"]).Model;
using var model = new Seq2SeqTransformer(cfg, padId: 0);
model.eval();

int sentences = args_.Get("sentences", 16), srcLen = args_.Get("src-len", 30), outLen = args_.Get("out", 64);
int beam = args_.Get("beam", 4), repeats = args_.Get("repeats", 3);
var rng = new Random(5);
var sources = Enumerable.Range(0, sentences)
    .Select(_ => Enumerable.Range(0, srcLen).Select(i => i == srcLen - 1 ? 2 : rng.Next(4, cfg.VocabSize)).ToArray()).ToList();
var options = new BeamSearchOptions { Beam = beam, MinLen = outLen, MaxLenA = 0, MaxLenB = outLen };

// Best of the repeats, wall clock and process CPU time: on a shared machine CPU time is the fairer measure of work.
(double Wall, double Cpu) Time(bool cache, out Hypothesis[] hyps)
{
    double bestWall = double.MaxValue, bestCpu = double.MaxValue;
    hyps = [];
    var process = Process.GetCurrentProcess();
    for (int r = 0; r < repeats; r++)
    {
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        hyps = BatchedDecoder.Decode(model, sources, 1, 2, options with { UseCache = cache }, sentences);
        bestWall = Math.Min(bestWall, clock.Elapsed.TotalSeconds);
        process.Refresh();
        bestCpu = Math.Min(bestCpu, (process.TotalProcessorTime - cpu0).TotalSeconds);
    }
    return (bestWall, bestCpu);
}

Time(true, out _); // warm-up: first-call costs of LibTorch kernels
var (cached, cachedCpu) = Time(true, out var withCache);
var (recomputed, recomputedCpu) = Time(false, out var without);
int same = Enumerable.Range(0, sentences).Count(i => withCache[i].Tokens.SequenceEqual(without[i].Tokens));
long tokens = withCache.Sum(h => (long)h.Tokens.Length);
Console.WriteLine($"m3-tiny (d_model {cfg.DModel}, {cfg.DecoderLayers} decoder layers, {cfg.Moe.Experts} experts, vocab {cfg.VocabSize}), " +
                  $"{sentences} sentences x {srcLen} source tokens, beam {beam}, {outLen} output tokens each, " +
                  $"eval capacity factor {cfg.Moe.EvalCapacityFactor}, {torch.get_num_threads()} threads, best of {repeats}");
Console.WriteLine("| path | wall s | CPU s | output tokens/s (wall) |");
Console.WriteLine("|---|---|---|---|");
Console.WriteLine($"| KV cache | {cached:F3} | {cachedCpu:F3} | {tokens / cached:F0} |");
Console.WriteLine($"| recompute prefix | {recomputed:F3} | {recomputedCpu:F3} | {tokens / recomputed:F0} |");
Console.WriteLine($"speed-up {recomputed / cached:F2}x wall, {recomputedCpu / cachedCpu:F2}x CPU; identical hypotheses: {same}/{sentences}");

/// <summary>--name value pairs.</summary>
internal sealed class Args
{
    private readonly Dictionary<string, string> values = new();

    public static Args Parse(string[] argv)
    {
        var a = new Args();
        for (int i = 0; i + 1 < argv.Length; i += 2)
            a.values[argv[i].TrimStart('-')] = argv[i + 1];
        return a;
    }

    public int Get(string name, int fallback) => values.TryGetValue(name, out var v) ? int.Parse(v) : fallback;
}
