using System.CommandLine;
using ZCode.Evaluation;
using ZCode.Text;

namespace ZCode.Cli.Commands;

/// <summary>`zcode translate`: stdin to stdout, one sentence per line, in input order.</summary>
internal static class TranslateCommand
{
    public static Command Create()
    {
        var checkpoint = CheckpointSession.Option();
        var src = new Option<string>("--src") { Description = "source language (code or alias, e.g. en or eng_Latn)", Required = true };
        var tgt = new Option<string>("--tgt") { Description = "target language (code or alias)", Required = true };
        var beam = CheckpointSession.BeamOption();
        var batchSize = CheckpointSession.BatchSizeOption();
        var threads = CheckpointSession.ThreadsOption();
        var device = CheckpointSession.DeviceOption();
        var dtype = CheckpointSession.DtypeOption();
        var weights = CheckpointSession.WeightsOption();
        var cmd = new Command("translate", "Translate stdin to stdout, one sentence per line, with beam search")
        {
            checkpoint, src, tgt, beam, batchSize, threads, device, dtype, weights,
        };
        cmd.SetAction(parse =>
        {
            // Resolve both languages first so a typo fails before the model is loaded.
            Languages.Resolve(parse.GetValue(src)!);
            var target = Languages.Resolve(parse.GetValue(tgt)!);
            var session = CheckpointSession.Open(parse.GetValue(checkpoint)!, parse.GetValue(threads),
                parse.GetValue(device), parse.GetValue(dtype), parse.GetValue(weights)!);
            var options = Translator.OptionsFrom(session.Checkpoint.Config.Eval, parse.GetValue(beam));
            options.Validate();
            var translator = new Translator(session.Checkpoint.Model, session.Tokenizer, options, parse.GetValue(batchSize));
            var lines = new List<string>();
            for (string? line; (line = Console.In.ReadLine()) is not null;)
                lines.Add(line);
            var (output, _, _) = translator.Translate(lines, target);
            var stdout = parse.InvocationConfiguration.Output;
            foreach (var line in output)
                stdout.WriteLine(line);
            return CliApp.ExitOk;
        });
        return cmd;
    }
}
