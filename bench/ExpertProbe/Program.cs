// Measures checkpoints for bench/expert-surgery.sh: token-level validation NLL on the config's data.valid,
// and greedy decoding time over the first validation sentences.
using System.Diagnostics;
using System.Text.Json.Nodes;
using TorchSharp;
using ZCode.Checkpoints;
using ZCode.Data;
using ZCode.Evaluation;

if (args.Length < 2 || args[0] is not ("valid-loss" or "decode-time"))
{
    Console.Error.WriteLine("usage: ExpertProbe valid-loss|decode-time CKPT [SENTENCES]");
    return 2;
}
torch.set_num_threads(1);
var ckpt = CheckpointReader.Load(args[1]);
var data = DataSource.Load(ckpt.Config, ckpt.Config.BaseDirectory);
var result = new JsonObject { ["checkpoint"] = ckpt.Directory, ["experts"] = ckpt.Config.Model.Moe.Experts, ["step"] = ckpt.Step };
if (args[0] == "valid-loss")
{
    result["valid_nll"] = ModelProbe.ValidNll(ckpt.Model, data.ValidSets.SelectMany(s => data.ValidBatches(s)));
}
else
{
    int sentences = args.Length > 2 ? int.Parse(args[2]) : 64;
    var batches = data.ValidBatches(data.ValidSets[0], 512).ToList();
    var tok = data.Tokenizer;
    // Warm-up on one batch, then time every batch until `sentences` sentences were decoded, best of 3 passes.
    // Greedy decoding (beam 1, incremental decoder), at most 40 tokens per sentence.
    var greedy = new BeamSearchOptions { Beam = 1, MaxLenA = 0, MaxLenB = 40 };
    var warm = new BeamSearchOptions { Beam = 1, MaxLenA = 0, MaxLenB = 8 };
    using (var _ = torch.NewDisposeScope()) BatchedDecoder.Decode(ckpt.Model, batches[0].Examples.Select(e => e.Source).ToList(), tok.BosId, tok.EosId, warm, batches[0].Size);
    double best = double.MaxValue;
    int done = 0;
    for (int pass = 0; pass < 3; pass++)
    {
        done = 0;
        var clock = Stopwatch.StartNew();
        foreach (var b in batches)
        {
            if (done >= sentences) break;
            using var scope = torch.NewDisposeScope();
            BatchedDecoder.Decode(ckpt.Model, b.Examples.Select(e => e.Source).ToList(), tok.BosId, tok.EosId, greedy, b.Size);
            done += b.Size;
        }
        best = Math.Min(best, clock.Elapsed.TotalSeconds);
    }
    result["sentences"] = done;
    result["decode_seconds"] = Math.Round(best, 3);
}
Console.WriteLine(result.ToJsonString());
return 0;
