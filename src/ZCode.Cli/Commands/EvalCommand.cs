using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Cli.Ui;
using ZCode.Data.Shards;
using ZCode.Evaluation;
using ZCode.Evaluation.Metrics;

namespace ZCode.Cli.Commands;

/// <summary>`zcode eval --task mt`: translate every requested direction of the config's data.valid (or data.test),
/// read from the prepared shards, score it with sacreBLEU-compatible BLEU and chrF, print a table, write hypotheses
/// and JSON.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var task = new Option<string>("--task") { Description = "evaluation task", Required = true };
        task.AcceptOnlyFromAmong("mt");
        var checkpoint = CheckpointSession.Option();
        var split = new Option<string>("--split") { Description = "data split of the checkpoint's config: valid (data.valid) | test (data.test)", DefaultValueFactory = _ => "valid" };
        split.AcceptOnlyFromAmong([.. MtEvaluation.Splits]);
        var pairs = new Option<string?>("--pairs") { Description = "directions to evaluate, e.g. en-de,de-en (default: all)" };
        var beam = CheckpointSession.BeamOption();
        var batchSize = CheckpointSession.BatchSizeOption();
        var threads = CheckpointSession.ThreadsOption();
        var device = CheckpointSession.DeviceOption();
        var dtype = CheckpointSession.DtypeOption();
        var tokenize = new Option<string?>("--tokenize") { Description = "BLEU tokenizer (default: the config's eval.tokenize)" };
        tokenize.AcceptOnlyFromAmong([.. SacreTokenizers.Names]);
        var json = new Option<string?>("--json") { Description = "scores JSON file (default: OUTPUT_DIR/scores.json)", HelpName = "FILE" };
        var outputDir = new Option<string?>("--output-dir") { Description = "hypotheses folder (default: runs/eval-<timestamp>)", HelpName = "DIR" };
        var cmd = new Command("eval", "Translate and score the validation (or test) directions of a checkpoint (BLEU, chrF as sacreBLEU)")
        {
            task, checkpoint, split, pairs, beam, batchSize, threads, device, dtype, tokenize, json, outputDir,
        };
        cmd.SetAction(parse =>
        {
            var session = CheckpointSession.Open(parse.GetValue(checkpoint)!, parse.GetValue(threads),
                parse.GetValue(device), parse.GetValue(dtype));
            var cfg = session.Checkpoint.Config;
            var splitName = parse.GetValue(split)!;
            var directions = MtEvaluation.Directions(cfg, splitName, parse.GetValue(pairs));
            var options = Translator.OptionsFrom(cfg.Eval, parse.GetValue(beam));
            options.Validate();
            var scoring = new ScoringOptions { Bleu = new BleuOptions { Tokenize = parse.GetValue(tokenize) ?? cfg.Eval.Tokenize } };
            scoring.Bleu.Validate();
            var dir = parse.GetValue(outputDir) ?? Path.Combine("runs", "eval-" + DateTime.Now.ToString("yyyyMMdd-HHmmss"));
            Directory.CreateDirectory(dir);
            var jsonPath = parse.GetValue(json) ?? Path.Combine(dir, "scores.json");
            var translator = new Translator(session.Checkpoint.Model, session.Tokenizer, options, parse.GetValue(batchSize));
            // Progress goes to stderr, as the per-direction lines do: stdout keeps only the table.
            PrepareResult prepared = PrepareProgressPrinter.Prepare(cfg, parse.InvocationConfiguration.Error);

            var results = new List<DirectionResult>();
            using (var progress = new EvalProgress(parse.InvocationConfiguration.Error))
            {
                foreach (var d in directions)
                {
                    var inputs = MtEvaluation.ReadInputs(prepared, d, session.Tokenizer);
                    progress.Start(d.Name, inputs.Sources.Count);
                    var r = MtEvaluation.Evaluate(d, inputs.Sources, inputs.References, s => translator.Translate(s, progress.Advance), scoring);
                    File.WriteAllLines(HypothesisPath(dir, splitName, d), r.Hypotheses);
                    progress.Finish(d.Name, $"BLEU {PyText.Fixed(r.Scores.Bleu!.Score, 2)}  chrF {PyText.Fixed(r.Scores.Chrf!.Score, 2)}  " +
                                            $"{r.Sentences} sentences  {r.TokensPerSecond:F0} tok/s");
                    results.Add(r);
                }
            }

            var output = parse.InvocationConfiguration.Output;
            PrintTable(output, results);
            File.WriteAllText(jsonPath, Json(session, splitName, options, dir, results).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            output.WriteLine($"BLEU signature: {results[0].Scores.Bleu!.Signature}");
            output.WriteLine($"chrF signature: {results[0].Scores.Chrf!.Signature}");
            output.WriteLine($"hypotheses: {dir}  scores: {jsonPath}");
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static string HypothesisPath(string dir, string split, EvalDirection d) => Path.Combine(dir, $"{split}.{d.Name}.hyp");

    private static void PrintTable(TextWriter output, List<DirectionResult> results)
    {
        output.WriteLine($"{"direction",-20} {"BLEU",7} {"chrF",7} {"sentences",10} {"tokens/s",10}");
        foreach (var r in results)
            output.WriteLine($"{r.Direction.Name,-20} {PyText.Fixed(r.Scores.Bleu!.Score, 2),7} {PyText.Fixed(r.Scores.Chrf!.Score, 2),7} " +
                             $"{r.Sentences,10} {r.TokensPerSecond.ToString("F0", CultureInfo.InvariantCulture),10}");
        var (bleu, chrf) = Averages(results);
        double seconds = results.Sum(r => r.Seconds);
        double speed = seconds > 0 ? results.Sum(r => r.Tokens) / seconds : 0;
        output.WriteLine($"{"average",-20} {PyText.Fixed(bleu, 2),7} {PyText.Fixed(chrf, 2),7} {results.Sum(r => r.Sentences),10} " +
                         $"{speed.ToString("F0", CultureInfo.InvariantCulture),10}");
    }

    /// <summary>Unweighted means over directions (each direction counts once, as in multilingual benchmark tables).</summary>
    private static (double Bleu, double Chrf) Averages(List<DirectionResult> results)
        => (results.Average(r => r.Scores.Bleu!.Score), results.Average(r => r.Scores.Chrf!.Score));

    private static JsonObject Json(CheckpointSession session, string split, BeamSearchOptions options, string dir,
        List<DirectionResult> results)
    {
        var (bleu, chrf) = Averages(results);
        var directions = new JsonArray();
        foreach (var r in results)
        {
            var entry = r.Scores.ToJson();
            entry["src"] = r.Direction.Src;
            entry["tgt"] = r.Direction.Tgt;
            entry["sentences"] = r.Sentences;
            entry["tokens"] = r.Tokens;
            entry["seconds"] = r.Seconds;
            entry["tokens_per_s"] = r.TokensPerSecond;
            entry["hypotheses"] = Path.GetFullPath(HypothesisPath(dir, split, r.Direction));
            directions.Add(entry);
        }
        return new JsonObject
        {
            ["checkpoint"] = session.Checkpoint.Directory,
            ["step"] = session.Checkpoint.Step,
            ["split"] = split,
            ["beam"] = options.Beam,
            ["length_penalty"] = options.LengthPenalty,
            ["max_len_a"] = options.MaxLenA,
            ["max_len_b"] = options.MaxLenB,
            ["directions"] = directions,
            ["average"] = new JsonObject { ["bleu"] = bleu, ["chrf"] = chrf, ["sentences"] = results.Sum(r => r.Sentences) },
        };
    }
}
