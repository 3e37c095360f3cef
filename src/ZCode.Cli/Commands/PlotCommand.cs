using System.CommandLine;
using ScottPlot;
using ZCode.Training;

namespace ZCode.Cli.Commands;

/// <summary>`zcode plot --run DIR`: PNGs from a run's metrics.jsonl (loss curves, expert balance, language x expert usage).</summary>
internal static class PlotCommand
{
    public static Command Create()
    {
        var run = new Option<string>("--run") { Description = "run directory of `zcode train` (holds metrics.jsonl)", Required = true, HelpName = "DIR" };
        var output = new Option<string?>("--out") { Description = "where to write the PNGs (default: DIR/plots)", HelpName = "DIR" };
        var cmd = new Command("plot", "Write PNG plots of a training run: loss curves and per-layer language x expert usage") { run, output };
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(run)!;
            var log = MetricsLog.Read(Path.Combine(dir, "metrics.jsonl"));
            if (log.Steps.Count == 0) throw new UserInputException($"{Path.Combine(dir, "metrics.jsonl")}: no records yet");
            var outDir = parse.GetValue(output) ?? Path.Combine(dir, "plots");
            Directory.CreateDirectory(outDir);
            var written = new List<string> { Loss(log, outDir) };
            if (log.LoadImbalance.Any(l => l.Length > 0)) written.Add(Balance(log, outDir));
            for (int layer = 0; layer < log.UsageLayers; layer++)
                written.Add(Usage(log, layer, outDir));
            foreach (var f in written) parse.InvocationConfiguration.Output.WriteLine(f);
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static string Loss(MetricsLog log, string outDir)
    {
        var plot = new Plot();
        double[] x = log.Steps.Select(s => (double)s).ToArray();
        plot.Add.ScatterLine(x, log.Loss.ToArray()).LegendText = "label-smoothed loss";
        if (log.NllLoss.All(double.IsFinite)) plot.Add.ScatterLine(x, log.NllLoss.ToArray()).LegendText = "nll";
        if (log.Validations.Count > 0)
            plot.Add.ScatterLine(log.Validations.Select(v => (double)v.Step).ToArray(), log.Validations.Select(v => v.ValidLoss).ToArray())
                .LegendText = "validation nll";
        plot.Title("Training loss");
        plot.XLabel("step");
        plot.YLabel("nats per target token");
        plot.ShowLegend();
        return Save(plot, outDir, "loss.png", 900, 500);
    }

    private static string Balance(MetricsLog log, string outDir)
    {
        var plot = new Plot();
        double[] x = log.Steps.Select(s => (double)s).ToArray();
        int layers = log.LoadImbalance.Max(l => l.Length);
        for (int i = 0; i < layers; i++)
            plot.Add.ScatterLine(x, log.LoadImbalance.Select(l => i < l.Length ? l[i] : double.NaN).ToArray()).LegendText = $"MoE layer {i}";
        plot.Title("Expert load imbalance (max / mean kept tokens per expert)");
        plot.XLabel("step");
        plot.YLabel("max / mean");
        plot.ShowLegend();
        return Save(plot, outDir, "expert_balance.png", 900, 500);
    }

    private static string Usage(MetricsLog log, int layer, string outDir)
    {
        var langs = log.UsageByLanguage.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();
        int experts = log.UsageByLanguage.Values.Max(v => layer < v.Length ? v[layer].Length : 0);
        var cells = new double[langs.Length, Math.Max(1, experts)];
        for (int r = 0; r < langs.Length; r++)
        {
            var layers = log.UsageByLanguage[langs[r]];
            for (int e = 0; e < experts; e++)
                cells[r, e] = layer < layers.Length && e < layers[layer].Length ? layers[layer][e] : 0;
        }
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(cells);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        // ScottPlot centres cell (r, e) on x = e, y = L-1-r (row 0 at the top).
        plot.Add.ColorBar(heatmap).Label = "fraction of the language's routed tokens";
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, experts).Select(e => (double)e).ToArray(), Enumerable.Range(0, experts).Select(e => e.ToString()).ToArray());
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, langs.Length).Select(r => langs.Length - r - 1.0).ToArray(), langs);
        plot.Title($"MoE layer {layer}: usage by target language");
        plot.XLabel("expert");
        return Save(plot, outDir, $"expert_usage_layer{layer}.png", 520 + 40 * experts, 150 + 32 * langs.Length);
    }

    private static string Save(Plot plot, string outDir, string name, int width, int height)
    {
        var path = Path.Combine(outDir, name);
        plot.SavePng(path, Math.Min(width, 2400), Math.Max(height, 300));
        return path;
    }
}
