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
    using (var _ = torch.NewDisposeScope()) GreedyDecoder.Decode(ckpt.Model, batches[0].ToTensors(torch.CPU).Item1, tok.BosId, tok.EosId, 8);
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
            GreedyDecoder.Decode(ckpt.Model, b.ToTensors(torch.CPU).Item1, tok.BosId, tok.EosId, 40);
            done += b.Size;
        }
        best = Math.Min(best, clock.Elapsed.TotalSeconds);
    }
    result["sentences"] = done;
    result["decode_seconds"] = Math.Round(best, 3);
}
Console.WriteLine(result.ToJsonString());
return 0;
