using System.Text.Json.Nodes;
using ZCode.Checkpoints;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Training.Optimization;

/// <summary>
/// AdamW state of a checkpoint addressed by parameter and GLOBAL expert id, whatever layout wrote it: a stage-0
/// checkpoint (per-parameter tensors) or ZeRO shards of any world size and expert-parallel size. This is what lets
/// a run resume on a different number of processes or ZeRO stage.
/// </summary>
public abstract class OptimizerStateSource : IDisposable
{
    public const string ExpAvg = "exp_avg", ExpAvgSq = "exp_avg_sq";

    /// <summary>AdamW step count.</summary>
    public abstract long Step { get; }

    /// <summary>Copies elements [start, start + dst.numel()) of <paramref name="field"/> of parameter
    /// <paramref name="name"/> (for a stacked expert parameter: of global expert <paramref name="expert"/>'s slice;
    /// -1 for a non-expert parameter) into <paramref name="dst"/>.</summary>
    public abstract void Read(string name, int expert, string field, long start, Tensor dst);

    public abstract void Dispose();

    /// <summary>Opens the optimizer state of checkpoint <paramref name="dir"/>.</summary>
    public static OptimizerStateSource Open(string dir, JsonObject manifest)
    {
        if (manifest["zero"] is JsonObject zero)
            return new ZeroShardStateSource(dir, zero);
        if (!File.Exists(Path.Combine(dir, CheckpointFormat.OptimizerSharedFile)))
            throw new UserInputException($"{dir}: holds no optimizer state (it was aggregated or pruned); start a new run from it with --init-from");
        return new PerParameterStateSource(dir, manifest);
    }

    /// <summary>Fills this rank's slice of a flat layout's moments (the whole vector at ZeRO 0): every parameter piece
    /// of the slice, expert pieces split at expert boundaries.</summary>
    public void Fill(FlatPartition part, Tensor expAvg, Tensor expAvgSq)
    {
        part.ForEachPiece(part.ShardStart, part.ShardSize, (slot, inSlot, inRange, n) =>
        {
            long perExpert = slot.Numel / slot.Experts;
            for (long done = 0; done < n;)
            {
                long at = inSlot + done;
                int local = (int)(at / perExpert);
                long within = at % perExpert;
                long m = Math.Min(n - done, perExpert - within);
                int expert = slot.FirstExpert < 0 ? -1 : slot.FirstExpert + local;
                using (var d = expAvg.narrow(0, inRange + done, m)) Read(slot.Name, expert, ExpAvg, slot.FirstExpert < 0 ? at : within, d);
                using (var d = expAvgSq.narrow(0, inRange + done, m)) Read(slot.Name, expert, ExpAvgSq, slot.FirstExpert < 0 ? at : within, d);
                done += m;
            }
        });
    }
}

/// <summary>Stage-0 checkpoints: optimizer-shared.safetensors ({name}.exp_avg ...) and, per MoE layer, the optimizer
/// file of the whole layer or of expert-parallel blocks (expert.{e}.{param}.exp_avg ...).</summary>
internal sealed class PerParameterStateSource : OptimizerStateSource
{
    private readonly string dir;
    private readonly List<string> files;
    private readonly Dictionary<string, (int Layer, string Param)> expertParams = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SafeTensors.Reader> readers = new(StringComparer.Ordinal);
    private readonly long step;

    public PerParameterStateSource(string dir, JsonObject manifest)
    {
        this.dir = dir;
        files = ((JsonObject)manifest["files"]!).Select(kv => kv.Key).ToList();
        if (manifest["moe_layers"] is JsonArray layers)
            foreach (var l in layers)
                foreach (var p in CheckpointFormat.ExpertParams)
                    expertParams[$"{l!["module"]!.GetValue<string>()}.{p}"] = (l["index"]!.GetValue<int>(), p);
        var shared = Reader(CheckpointFormat.OptimizerSharedFile);
        var stepKey = shared.Tensors.Keys.FirstOrDefault(k => k.EndsWith(".step", StringComparison.Ordinal));
        using var s = stepKey is null ? null : shared.Read(stepKey);
        step = s?.item<long>() ?? 0;
    }

    public override long Step => step;

    private SafeTensors.Reader Reader(string file)
    {
        if (!readers.TryGetValue(file, out var r))
            readers[file] = r = new SafeTensors.Reader(Path.Combine(dir, file));
        return r;
    }

    public override void Read(string name, int expert, string field, long start, Tensor dst)
    {
        SafeTensors.Reader? reader;
        string key;
        if (expert < 0)
        {
            key = $"{name}.{field}";
            reader = Reader(CheckpointFormat.OptimizerSharedFile);
        }
        else
        {
            if (!expertParams.TryGetValue(name, out var e)) throw new UserInputException($"{dir}: no MoE layer holds {name}");
            key = $"{CheckpointFormat.ExpertTensor(expert, e.Param)}.{field}";
            reader = files.Where(f => CheckpointFormat.IsExpertFileOf(f, e.Layer, CheckpointFormat.OptimizerPrefix)).Select(Reader)
                .FirstOrDefault(r => r.Contains(key));
        }
        if (reader is null || !reader.Contains(key))
            throw new UserInputException($"{dir}: no optimizer file holds {key}; the checkpoint does not fit this model");
        using var full = reader.Read(key);
        using var flat = full.view(-1);
        using var piece = flat.narrow(0, start, dst.numel());
        dst.copy_(piece);
    }

    public override void Dispose()
    {
        foreach (var r in readers.Values) r.Dispose();
    }
}

/// <summary>
/// ZeRO checkpoints: every rank's optimizer-zero-rankNNNNN.safetensors holds its slices (dense.exp_avg [S], ...,
/// expert.exp_avg [S_e], ...) and the manifest's "zero" section maps parameters (and global experts) to flat offsets.
/// A piece is found by locating its flat offset and the rank whose slice covers it.
/// </summary>
public sealed class ZeroShardStateSource : OptimizerStateSource
{
    private readonly string dir;
    private readonly int expertParallel;
    private readonly ZeroVector dense;
    private readonly ZeroVector experts;
    private readonly Dictionary<(int Rank, string Tensor), Tensor> cache = new();
    private readonly long step;

    private sealed record ZeroVector(int Ranks, long ShardSize, Dictionary<string, (long Offset, long Numel, int Experts)> Slots);

    public ZeroShardStateSource(string dir, JsonObject zero)
    {
        this.dir = dir;
        expertParallel = zero["expert_parallel"]!.GetValue<int>();
        dense = Vector(zero["dense"]!.AsObject());
        experts = Vector(zero["expert"]!.AsObject());
        using var s = Shard(0, "dense.step");
        step = s.item<long>();
    }

    private static ZeroVector Vector(JsonObject o) => new(o["ranks"]!.GetValue<int>(), o["shard_size"]!.GetValue<long>(),
        o["slots"]!.AsArray().ToDictionary(s => s!["name"]!.GetValue<string>(),
            s => (s!["offset"]!.GetValue<long>(), s["numel"]!.GetValue<long>(), s["experts"]?.GetValue<int>() ?? 1), StringComparer.Ordinal));

    public override long Step => step;

    public static string FileOf(int rank) => $"optimizer-zero-rank{rank:D5}.safetensors";

    private Tensor Shard(int rank, string tensorName)
    {
        if (!cache.TryGetValue((rank, tensorName), out var t))
        {
            var path = Path.Combine(dir, FileOf(rank));
            if (!File.Exists(path)) throw new UserInputException($"{path}: missing; the ZeRO checkpoint is incomplete");
            using var reader = new SafeTensors.Reader(path);
            cache[(rank, tensorName)] = t = reader.Read(tensorName);
        }
        return t;
    }

    public override void Read(string name, int expert, string field, long start, Tensor dst)
    {
        bool isExpert = expert >= 0;
        var v = isExpert ? experts : dense;
        if (!v.Slots.TryGetValue(name, out var slot))
            throw new UserInputException($"{dir}: the ZeRO checkpoint has no optimizer state for {name}; it does not fit this model");
        long offset = slot.Offset + start;
        int position = 0;
        if (isExpert)
        {
            // Ranks at position p of every expert group hold experts [p*E_local, (p+1)*E_local) of each layer.
            position = expert / slot.Experts;
            offset += (expert % slot.Experts) * (slot.Numel / slot.Experts);
        }
        long n = dst.numel();
        for (long done = 0; done < n;)
        {
            long at = offset + done;
            int q = (int)(at / v.ShardSize);
            long inShard = at % v.ShardSize;
            long m = Math.Min(n - done, v.ShardSize - inShard);
            int rank = isExpert ? q * expertParallel + position : q;
            var src = Shard(rank, (isExpert ? "expert." : "dense.") + field);
            using (var piece = src.narrow(0, inShard, m))
            using (var d = dst.narrow(0, done, m))
                d.copy_(piece);
            done += m;
        }
    }

    public override void Dispose()
    {
        foreach (var t in cache.Values) t.Dispose();
    }
}
