using ZCode.Data;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// Per-task loss and per-language token counts of one optimizer step, for metrics.jsonl (<c>loss_mt</c>,
/// <c>loss_dae</c>, <c>tokens_by_lang</c>). The task loss is the unsmoothed NLL per target token, so tasks compare
/// directly whatever the label smoothing. A batch of one task reuses the batch NLL; only a batch mixing tasks costs
/// an extra (no-grad) per-row gather. The trainer fills it on logged steps only (it reads the device).
/// </summary>
public sealed class TaskMetrics
{
    private readonly SortedDictionary<string, (double Nll, long Tokens)> _tasks = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, long> _langTokens = new(StringComparer.Ordinal);

    /// <summary>Adds one micro-batch: <paramref name="batchNll"/> is its summed NLL (from the loss already computed).</summary>
    public void Add(Batch batch, Tensor logits, Tensor tgtOut, int padId, double batchNll)
    {
        var examples = batch.Examples;
        foreach (var e in examples)
        {
            _langTokens[e.SrcLang] = _langTokens.GetValueOrDefault(e.SrcLang) + e.Source.Length;
            _langTokens[e.TgtLang] = _langTokens.GetValueOrDefault(e.TgtLang) + e.Target.Length;
        }
        var first = examples[0].Task;
        if (examples.All(e => e.Task == first))
        {
            Accumulate(first, batchNll, batch.TgtTokenCount);
            return;
        }
        float[] rows;
        using (no_grad())
        using (NewDisposeScope())
        {
            var lprobs = nn.functional.log_softmax(logits.detach().to(ScalarType.Float32), -1);
            var nll = -lprobs.gather(-1, tgtOut.clamp_min(0).unsqueeze(-1)).squeeze(-1);
            rows = ZCode.Runtime.HostTransfers.Read<float>(nll.masked_fill(tgtOut.eq(padId), 0.0).sum(1));
        }
        for (var r = 0; r < examples.Count; r++) Accumulate(examples[r].Task, rows[r], examples[r].Target.Length);
    }

    private void Accumulate(string task, double nll, long tokens)
    {
        var (n, t) = _tasks.GetValueOrDefault(task);
        _tasks[task] = (n + nll, t + tokens);
    }

    /// <summary>Adds NLL and token sums of <paramref name="tasks"/> and token counts of <paramref name="langs"/> to
    /// <paramref name="sums"/>, zeros where this process saw none: every rank adds the same names.</summary>
    public void AddTo(NamedSums sums, IEnumerable<string> tasks, IEnumerable<string> langs)
    {
        foreach (var task in tasks)
        {
            var (n, t) = _tasks.GetValueOrDefault(task);
            sums.Add($"task/{task}/nll", n);
            sums.Add($"task/{task}/tokens", t);
        }
        foreach (var lang in langs)
            sums.Add($"lang/{lang}/tokens", _langTokens.GetValueOrDefault(lang));
    }

    /// <summary>Replaces the sums with those of <paramref name="sums"/> (after the reduction).</summary>
    public void TakeFrom(NamedSums sums, IEnumerable<string> tasks, IEnumerable<string> langs)
    {
        _tasks.Clear();
        _langTokens.Clear();
        foreach (var task in tasks)
        {
            double n = sums[$"task/{task}/nll"], t = sums[$"task/{task}/tokens"];
            if (t > 0) _tasks[task] = (n, (long)t);
        }
        foreach (var lang in langs)
        {
            long count = (long)sums[$"lang/{lang}/tokens"];
            if (count > 0) _langTokens[lang] = count;
        }
    }

    /// <summary>NLL per target token by task.</summary>
    public IReadOnlyDictionary<string, double> LossByTask =>
        _tasks.ToDictionary(kv => kv.Key, kv => kv.Value.Nll / Math.Max(1, kv.Value.Tokens));

    /// <summary>Non-pad tokens by language (sources counted under the source language, targets under the target).</summary>
    public IReadOnlyDictionary<string, long> TokensByLang => new SortedDictionary<string, long>(_langTokens);
}
