using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ZCode.Training;

/// <summary>Appends one JSON object per logged step (and per validation) to metrics.jsonl, flushed per line so a crash
/// loses nothing.</summary>
public sealed class MetricsWriter : IDisposable
{
    private readonly StreamWriter writer;

    public MetricsWriter(string path, bool append)
    {
        writer = new StreamWriter(path, append, new UTF8Encoding(false)) { AutoFlush = true };
    }

    public void Write(StepMetrics m)
    {
        var buffer = new MemoryStream();
        using (var j = new Utf8JsonWriter(buffer))
        {
            j.WriteStartObject();
            j.WriteNumber("step", m.Step);
            j.WriteNumber("loss", Round(m.Loss));
            j.WriteNumber("nll_loss", Round(m.NllLoss));
            j.WriteNumber("lr", m.Lr);
            j.WriteNumber("tokens", m.Tokens);
            j.WriteNumber("total_tokens", m.TotalTokens);
            j.WriteNumber("tokens_per_s", Math.Round(m.TokensPerSecond, 1));
            j.WriteNumber("aux_loss", Round(m.AuxLoss));
            j.WriteNumber("z_loss", Round(m.ZLoss));
            j.WriteNumber("grad_norm", Round(m.GradNorm));
            j.WriteNumber("dropped_fraction", Round(m.DroppedFraction));
            WriteMatrix(j, "expert_load", m.ExpertLoad);
            j.WriteStartArray("router_entropy");
            foreach (var h in m.RouterEntropy)
                j.WriteNumberValue(Round(h));
            j.WriteEndArray();
            j.WriteStartArray("load_imbalance");
            foreach (var v in m.LoadImbalance)
                j.WriteNumberValue(Round(v));
            j.WriteEndArray();
            j.WriteStartObject("expert_usage_by_lang");
            foreach (var (lang, layers) in m.ExpertUsageByLang)
                WriteMatrix(j, lang, layers);
            j.WriteEndObject();
            j.WriteNumber("step_s", Round(m.StepSeconds));
            j.WriteNumber("data_wait_s", Round(m.DataWaitSeconds));
            j.WriteNumber("elapsed_s", Math.Round(m.ElapsedSeconds, 3));
            j.WriteNumber("optimizer_state_bytes", m.OptimizerStateBytes);
            // Resident memory of this process now: a run whose memory grows shows it here long before it fails.
            j.WriteNumber("rss_mb", Environment.WorkingSet >> 20);
            foreach (var (task, loss) in m.LossByTask.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                j.WriteNumber("loss_" + task, Round(loss));
            j.WriteStartObject("tokens_by_lang");
            foreach (var (lang, n) in m.TokensByLang.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                j.WriteNumber(lang, n);
            j.WriteEndObject();
            j.WriteEndObject();
        }
        writer.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    /// <summary>A validation record: <c>"type": "valid"</c>, the step, which weights were validated, the overall and
    /// per-direction figures, and the best so far.</summary>
    public void WriteValidation(int step, ZCode.Evaluation.ValidationResult r, string weights, ValidationHistory history)
    {
        var buffer = new MemoryStream();
        using (var j = new Utf8JsonWriter(buffer))
        {
            j.WriteStartObject();
            j.WriteString("type", "valid");
            j.WriteNumber("step", step);
            j.WriteString("weights", weights);
            j.WriteNumber("valid_loss", Round(r.ValidLoss));
            j.WriteNumber("valid_ppl", Round(Math.Exp(r.ValidLoss)));
            j.WriteNumber("bleu", Round(r.Bleu));
            j.WriteNumber("chrf", Round(r.Chrf));
            j.WriteString("best_metric", history.Metric);
            j.WriteNumber("best", Round(history.Best!.Metric(history.Metric)));
            j.WriteNumber("best_step", history.Best.Step);
            j.WriteNumber("since_best", history.SinceBest);
            j.WriteNumber("seconds", Math.Round(r.Seconds, 3));
            j.WriteStartObject("directions");
            foreach (var d in r.Directions)
            {
                j.WriteStartObject(d.Direction.Name);
                j.WriteNumber("nll", Round(d.Nll));
                j.WriteNumber("ppl", Round(d.Perplexity));
                j.WriteNumber("bleu", Round(d.Scores.Bleu?.Score ?? 0));
                j.WriteNumber("chrf", Round(d.Scores.Chrf?.Score ?? 0));
                j.WriteNumber("sentences", d.Sentences);
                j.WriteEndObject();
            }
            j.WriteEndObject();
            j.WriteEndObject();
        }
        writer.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void WriteMatrix(Utf8JsonWriter j, string name, double[][] rows)
    {
        j.WriteStartArray(name);
        foreach (var row in rows)
        {
            j.WriteStartArray();
            foreach (var f in row)
                j.WriteNumberValue(Round(f));
            j.WriteEndArray();
        }
        j.WriteEndArray();
    }

    private static double Round(double v) => double.IsFinite(v) ? Math.Round(v, 6) : 0.0;

    public void Dispose() => writer.Dispose();
}
