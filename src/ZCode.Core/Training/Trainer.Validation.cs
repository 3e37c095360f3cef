using ZCode.Evaluation;
using ZCode.Evaluation.Metrics;
using ZCode.Text;

namespace ZCode.Training;

/// <summary>What periodic validation runs on: the tokenizer, the validation directions and how to translate them.</summary>
public sealed record TrainingValidation(SpmTokenizer Tokenizer, IReadOnlyList<ValidationDirection> Directions, ValidationOptions Options);

/// <summary>The trainer's validation: every train.eval_interval steps and at the last step, best checkpoint, early stop.</summary>
public sealed partial class Trainer
{
    /// <summary>The run's validations so far (restored on resume).</summary>
    public ValidationHistory Validations => history;

    private bool IsValidationStep(int s)
        => validation is not null && (s % cfg.Train.EvalInterval == 0 || s == cfg.Train.MaxSteps);

    /// <summary>
    /// Validates the model (its moving average with train.ema_decay) on every rank, records the result (metrics.jsonl,
    /// train.log, the observer, hypotheses under OUTPUT/valid/step-NNNNNNN/), saves checkpoints/best when
    /// train.best_metric improved, and returns whether early stopping (train.patience) says to stop.
    /// </summary>
    private bool Validate(int s, MetricsWriter? metrics)
    {
        var v = validation!;
        ValidationResult Run() => MtValidator.Run(model, v.Tokenizer, v.Directions, v.Options, layout);
        var result = ema is null ? Run() : ema.WithAveragedWeights(Run);
        bool improved = history.Add(s, result);
        var weights = ema is null ? "raw" : "ema";
        if (IsRank0)
        {
            metrics?.WriteValidation(s, result, weights, history);
            var dir = Path.Combine(outputDir, "valid", ZCode.Checkpoints.CheckpointStore.StepDirName(s));
            Directory.CreateDirectory(dir);
            foreach (var d in result.Directions)
                File.WriteAllLines(Path.Combine(dir, $"{d.Direction.Name}.hyp"), d.Hypotheses);
            foreach (var d in result.Directions.Where(_ => result.Directions.Count > 1))
                log.Information("valid {Direction}: nll {Nll:F4} ppl {Ppl:F2} BLEU {Bleu} chrF {Chrf} ({Sentences} sentences)",
                    d.Direction.Name, d.Nll, d.Perplexity, PyText.Fixed(d.Scores.Bleu!.Score, 2), PyText.Fixed(d.Scores.Chrf!.Score, 2), d.Sentences);
            var best = history.Best!;
            log.Information("valid step {Step} ({Weights} weights): loss {Loss:F4} ppl {Ppl:F2} BLEU {Bleu} chrF {Chrf}; best {Metric} " +
                            "{BestValue:F4} at step {BestStep}{Patience} ({Seconds:F1} s)",
                s, weights, result.ValidLoss, Math.Exp(result.ValidLoss), PyText.Fixed(result.Bleu, 2), PyText.Fixed(result.Chrf, 2),
                history.Metric, best.Metric(history.Metric), best.Step,
                cfg.Train.Patience > 0 ? $", {history.SinceBest}/{cfg.Train.Patience} without improvement" : "", result.Seconds);
            observer.OnValidation(s, result, improved);
        }
        if (improved) SaveBest(s);
        return cfg.Train.Patience > 0 && history.SinceBest >= cfg.Train.Patience;
    }
}
