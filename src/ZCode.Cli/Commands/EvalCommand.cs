using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ZCode.Cli.Ui;
using ZCode.Data;
using ZCode.Data.Shards;
using ZCode.Parallel;
using ZCode.Evaluation;
using ZCode.Evaluation.Metrics;

namespace ZCode.Cli.Commands;

/// <summary>`zcode eval --task mt`: the validator training uses (<see cref="MtValidator"/>) on every line of every
/// requested direction of the config's data.valid (or data.test), read from the prepared shards: NLL, and translations
/// scored with sacreBLEU-compatible BLEU and chrF; prints a table, writes hypotheses and JSON.</summary>
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
        var weights = CheckpointSession.WeightsOption();
        var tokenize = new Option<string?>("--tokenize") { Description = "BLEU tokenizer (default: the config's eval.tokenize)" };
        tokenize.AcceptOnlyFromAmong([.. SacreTokenizers.Names]);
        var json = new Option<string?>("--json") { Description = "scores JSON file (default: OUTPUT_DIR/scores.json)", HelpName = "FILE" };
        var outputDir = new Option<string?>("--output-dir") { Description = "hypotheses folder (default: runs/eval-<timestamp>)", HelpName = "DIR" };
        var cmd = new Command("eval", "Translate and score the validation (or test) directions of a checkpoint (BLEU, chrF as sacreBLEU)")
        {
            task, checkpoint, split, pairs, beam, batchSize, threads, device, dtype, weights, tokenize, json, outputDir,
        };
        cmd.SetAction(parse =>
        {
            var session = CheckpointSession.Open(parse.GetValue(checkpoint)!, parse.GetValue(threads),
                parse.GetValue(device), parse.GetValue(dtype), parse.GetValue(weights)!);
            var cfg = session.Checkpoint.Config;
            var splitName = parse.GetValue(split)!;
            MtEvaluation.Directions(cfg, splitName, parse.GetValue(pairs)); // a bad --pairs or split fails before the data is read
            var beamOptions = Translator.OptionsFrom(cfg.Eval, parse.GetValue(beam));
            beamOptions.Validate();
            var scoring = new ScoringOptions { Bleu = new BleuOptions { Tokenize = parse.GetValue(tokenize) ?? cfg.Eval.Tokenize } };
            scoring.Bleu.Validate();
            var dir = parse.GetValue(outputDir) ?? Path.Combine("runs", "eval-" + DateTime.Now.ToString("yyyyMMdd-HHmmss"));
            Directory.CreateDirectory(dir);
            var jsonPath = parse.GetValue(json) ?? Path.Combine(dir, "scores.json");
            // Progress goes to stderr, as the per-direction lines do: stdout keeps only the table.
            PrepareResult prepared = PrepareProgressPrinter.Prepare(cfg, parse.InvocationConfiguration.Error);
            var data = DataSource.FromPrepared(cfg, prepared);
            var directions = MtValidator.Directions(cfg, data, prepared, splitName, parse.GetValue(pairs));
            var options = new ValidationOptions(beamOptions, scoring, Sentences: 0, BatchSize: parse.GetValue(batchSize));

            var results = new List<DirectionValidation>();
            using (var single = ParallelLayout.Single())
            using (var progress = new EvalProgress(parse.InvocationConfiguration.Error))
            {
                foreach (var d in directions)
                {
                    progress.Start(d.Direction.Name, d.Inputs.Sources.Count);
                    var r = MtValidator.Run(session.Checkpoint.Model, session.Tokenizer, [d], options, single, (_, done) => progress.Advance(done))
                        .Directions[0];
                    File.WriteAllLines(HypothesisPath(dir, splitName, d.Direction), r.Hypotheses);
                    progress.Finish(d.Direction.Name, $"BLEU {PyText.Fixed(r.Scores.Bleu!.Score, 2)}  chrF {PyText.Fixed(r.Scores.Chrf!.Score, 2)}  " +
                                                      $"nll {r.Nll:F4}  {r.Sentences} sentences  {r.TokensPerSecond:F0} tok/s");
                    results.Add(r);
                }
            }

            var output = parse.InvocationConfiguration.Output;
            PrintTable(output, results);
            File.WriteAllText(jsonPath, Json(session, splitName, beamOptions, dir, results).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            output.WriteLine($"BLEU signature: {results[0].Scores.Bleu!.Signature}");
            output.WriteLine($"chrF signature: {results[0].Scores.Chrf!.Signature}");
            output.WriteLine($"hypotheses: {dir}  scores: {jsonPath}");
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static string HypothesisPath(string dir, string split, EvalDirection d) => Path.Combine(dir, $"{split}.{d.Name}.hyp");

    private static void PrintTable(TextWriter output, List<DirectionValidation> results)
    {
        output.WriteLine($"{"direction",-20} {"BLEU",7} {"chrF",7} {"nll",8} {"ppl",9} {"sentences",10} {"tokens/s",10}");
        foreach (var r in results)
            output.WriteLine($"{r.Direction.Name,-20} {PyText.Fixed(r.Scores.Bleu!.Score, 2),7} {PyText.Fixed(r.Scores.Chrf!.Score, 2),7} " +
                             $"{Fixed(r.Nll, 4),8} {Fixed(r.Perplexity, 2),9} {r.Sentences,10} {Fixed(r.TokensPerSecond, 0),10}");
        var total = new ValidationResult(results, 0);
        double seconds = results.Sum(r => r.DecodeSeconds);
        double speed = seconds > 0 ? results.Sum(r => r.HypothesisTokens) / seconds : 0;
        output.WriteLine($"{"average",-20} {PyText.Fixed(total.Bleu, 2),7} {PyText.Fixed(total.Chrf, 2),7} {Fixed(total.ValidLoss, 4),8} " +
                         $"{Fixed(Math.Exp(total.ValidLoss), 2),9} {results.Sum(r => r.Sentences),10} {Fixed(speed, 0),10}");
    }

    private static string Fixed(double v, int digits) => v.ToString("F" + digits, CultureInfo.InvariantCulture);

    private static JsonObject Json(CheckpointSession session, string split, BeamSearchOptions options, string dir,
        List<DirectionValidation> results)
    {
        var total = new ValidationResult(results, 0);
        var directions = new JsonArray();
        foreach (var r in results)
        {
            var entry = r.Scores.ToJson();
            entry["src"] = r.Direction.Src;
            entry["tgt"] = r.Direction.Tgt;
            entry["sentences"] = r.Sentences;
            entry["nll"] = r.Nll;
            entry["ppl"] = r.Perplexity;
            entry["tokens"] = r.HypothesisTokens;
            entry["seconds"] = r.DecodeSeconds;
            entry["tokens_per_s"] = r.TokensPerSecond;
            entry["hypotheses"] = Path.GetFullPath(HypothesisPath(dir, split, r.Direction));
            directions.Add(entry);
        }
        return new JsonObject
        {
            ["checkpoint"] = session.Checkpoint.Directory,
            ["step"] = session.Checkpoint.Step,
            ["weights"] = session.Checkpoint.Weights,
            ["split"] = split,
            ["beam"] = options.Beam,
            ["length_penalty"] = options.LengthPenalty,
            ["max_len_a"] = options.MaxLenA,
            ["max_len_b"] = options.MaxLenB,
            ["directions"] = directions,
            ["average"] = new JsonObject
            {
                ["bleu"] = total.Bleu, ["chrf"] = total.Chrf, ["nll"] = total.ValidLoss, ["sentences"] = results.Sum(r => r.Sentences),
            },
        };
    }
}
