using System.CommandLine;
using System.Text.Json;
using ZCode.Evaluation;
using ZCode.Evaluation.Metrics;

namespace ZCode.Cli.Commands;

/// <summary>`zcode score`: sacreBLEU-compatible BLEU and chrF of a hypothesis file against reference files.</summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var hyp = new Option<string>("--hyp") { Description = "system output, one sentence per line", HelpName = "FILE", Required = true };
        var refs = new Option<string[]>("--ref")
        {
            Description = "reference file aligned with --hyp; repeat for several references",
            HelpName = "FILE", Required = true, Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false,
        };
        var metrics = new Option<string>("--metrics") { Description = "comma-separated: bleu, chrf", DefaultValueFactory = _ => "bleu,chrf" };
        var tokenize = new Option<string>("--tokenize") { Description = "BLEU tokenizer", DefaultValueFactory = _ => "13a" };
        tokenize.AcceptOnlyFromAmong([.. SacreTokenizers.Names]);
        var lowercase = new Option<bool>("--lowercase", "-lc") { Description = "case-insensitive BLEU and chrF" };
        var smooth = new Option<string>("--smooth-method") { Description = "BLEU smoothing", DefaultValueFactory = _ => "exp" };
        smooth.AcceptOnlyFromAmong([.. BleuOptions.SmoothMethods]);
        var smoothValue = new Option<double?>("--smooth-value") { Description = "value for floor (default 0.1) or add-k (default 1)" };
        var maxOrder = new Option<int>("--max-ngram-order") { Description = "BLEU n-gram order", DefaultValueFactory = _ => 4 };
        var effective = new Option<bool>("--effective-order") { Description = "average BLEU only over the n-gram orders the hypotheses have" };
        var charOrder = new Option<int>("--chrf-char-order") { Description = "chrF character n-gram order", DefaultValueFactory = _ => 6 };
        var wordOrder = new Option<int>("--chrf-word-order") { Description = "chrF word n-gram order (2 = chrF++)", DefaultValueFactory = _ => 0 };
        var beta = new Option<int>("--chrf-beta") { Description = "chrF recall weight", DefaultValueFactory = _ => 2 };
        var whitespace = new Option<bool>("--chrf-whitespace") { Description = "keep whitespace in chrF character n-grams" };
        var eps = new Option<bool>("--chrf-eps-smoothing") { Description = "chrF++.py/NLTK epsilon smoothing instead of effective order" };
        var sentence = new Option<bool>("--sentence-level") { Description = "one score per sentence (BLEU with effective order)" };
        var width = new Option<int>("--width", "-w") { Description = "decimals printed (sacreBLEU's default 1)", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var cmd = new Command("score", "BLEU and chrF of a system output, computed as sacreBLEU 2.x does (signature included)")
        {
            hyp, refs, metrics, tokenize, lowercase, smooth, smoothValue, maxOrder, effective, charOrder, wordOrder, beta,
            whitespace, eps, sentence, width, json,
        };
        cmd.SetAction(parse =>
        {
            var (computeBleu, computeChrf) = ScoringOptions.ParseMetrics(parse.GetValue(metrics)!);
            var options = new ScoringOptions
            {
                ComputeBleu = computeBleu,
                ComputeChrf = computeChrf,
                Bleu = new BleuOptions
                {
                    Tokenize = parse.GetValue(tokenize)!, Lowercase = parse.GetValue(lowercase),
                    SmoothMethod = parse.GetValue(smooth)!, SmoothValue = parse.GetValue(smoothValue),
                    MaxNgramOrder = parse.GetValue(maxOrder), EffectiveOrder = parse.GetValue(effective),
                },
                Chrf = new ChrfOptions
                {
                    CharOrder = parse.GetValue(charOrder), WordOrder = parse.GetValue(wordOrder), Beta = parse.GetValue(beta),
                    Lowercase = parse.GetValue(lowercase), Whitespace = parse.GetValue(whitespace), EpsSmoothing = parse.GetValue(eps),
                },
            };
            options.Bleu.Validate();
            options.Chrf.Validate();
            if (parse.GetValue(width) < 0) throw new UserInputException($"--width must be >= 0, got {parse.GetValue(width)}");
            var hypPath = parse.GetValue(hyp)!;
            var hyps = TextLines.Read(hypPath);
            var references = new List<IReadOnlyList<string>>();
            foreach (var path in parse.GetValue(refs)!)
            {
                var lines = TextLines.Read(path);
                if (lines.Count != hyps.Count)
                    throw new UserInputException($"{hypPath} has {hyps.Count} lines but {path} has {lines.Count}: hypotheses and references must be aligned line by line");
                references.Add(lines);
            }
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(sentence))
            {
                foreach (var s in CorpusScorer.Sentences(hyps, references, options))
                {
                    if (parse.GetValue(json)) output.WriteLine(s.ToJson().ToJsonString());
                    else foreach (var line in s.TextLines(parse.GetValue(width))) output.WriteLine(line);
                }
                return CliApp.ExitOk;
            }
            var scores = CorpusScorer.Score(hyps, references, options);
            if (parse.GetValue(json))
                output.WriteLine(scores.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            else
                foreach (var line in scores.TextLines(parse.GetValue(width))) output.WriteLine(line);
            return CliApp.ExitOk;
        });
        return cmd;
    }
}
