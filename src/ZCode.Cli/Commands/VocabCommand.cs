using System.CommandLine;
using System.Text;
using ZCode.Data;
using ZCode.Text;

namespace ZCode.Cli.Commands;

/// <summary>`zcode vocab train|encode|decode`: SentencePiece model training (via spm_train) and stdin/stdout coding.</summary>
internal static class VocabCommand
{
    public static Command Create() => new("vocab", "Train and use the SentencePiece vocabulary")
    {
        CreateTrain(), CreateEncode(), CreateDecode(),
    };

    private static Command CreateTrain()
    {
        var input = new Option<string[]>("--input") { Description = "text files, one language each (repeatable)", Required = true, AllowMultipleArgumentsPerToken = true };
        var size = new Option<int>("--size") { Description = "vocabulary size", Required = true };
        var output = new Option<string>("--out") { Description = "model file to write (MODEL.model and MODEL.vocab)", Required = true };
        var sample = new Option<long>("--sample-sentences") { Description = "sentences in the language-balanced training sample", DefaultValueFactory = _ => 1_000_000 };
        var coverage = new Option<double>("--character-coverage") { Description = "spm_train --character_coverage", DefaultValueFactory = _ => 0.9995 };
        var temperature = new Option<double>("--temperature") { Description = "balance: lines per file ∝ n^(1/T)", DefaultValueFactory = _ => 5.0 };
        var seed = new Option<long>("--seed") { Description = "sampling and spm_train seed", DefaultValueFactory = _ => 1 };
        var cmd = new Command("train", "Train a SentencePiece unigram model with every language and task tag")
        {
            input, size, output, sample, coverage, temperature, seed,
        };
        cmd.SetAction(parse =>
        {
            var err = parse.InvocationConfiguration.Error;
            var model = VocabTrainer.Train(new VocabTrainOptions(parse.GetValue(input)!, parse.GetValue(size), parse.GetValue(output)!,
                parse.GetValue(sample), parse.GetValue(coverage), parse.GetValue(temperature), parse.GetValue(seed)), err);
            parse.InvocationConfiguration.Output.WriteLine(model);
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static Option<string> ModelOption() => new("--model") { Description = "SentencePiece model", Required = true };

    private static Command CreateEncode()
    {
        var model = ModelOption();
        var ids = new Option<bool>("--ids") { Description = "print ids (as spm_encode --output_format=id) instead of pieces" };
        var cmd = new Command("encode", "Encode stdin, one line per line, to pieces or ids on stdout") { model, ids };
        cmd.SetAction(parse =>
        {
            var tok = SpmTokenizer.Load(parse.GetValue(model)!);
            using var stdout = Stdout(parse);
            Encode(tok, Console.OpenStandardInput(), "<stdin>", stdout, parse.GetValue(ids));
            return CliApp.ExitOk;
        });
        return cmd;
    }

    /// <summary>Encodes each line of <paramref name="input"/> to one output line of ids or pieces.</summary>
    internal static void Encode(SpmTokenizer tok, Stream input, string name, TextWriter output, bool asIds)
    {
        var sb = new StringBuilder();
        foreach (var line in Utf8LineReader.ReadLines(input, name))
        {
            sb.Clear();
            foreach (var id in tok.Encode(line))
            {
                if (sb.Length > 0) sb.Append(' ');
                if (asIds) sb.Append(id); else sb.Append(tok.IdToToken(id));
            }
            output.Write(sb.Append('\n').ToString());
        }
    }

    private static Command CreateDecode()
    {
        var model = ModelOption();
        var cmd = new Command("decode", "Decode lines of space-separated ids from stdin to text on stdout") { model };
        cmd.SetAction(parse =>
        {
            var tok = SpmTokenizer.Load(parse.GetValue(model)!);
            using var stdout = Stdout(parse);
            long n = 0;
            foreach (var line in Utf8LineReader.ReadLines(Console.OpenStandardInput(), "<stdin>"))
            {
                n++;
                var ids = new List<int>();
                foreach (var part in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (!int.TryParse(part, out var id) || id < 0 || id >= tok.VocabSize)
                        throw UserInputException.At("<stdin>", n, 1, $"'{part}' is not a token id (0..{tok.VocabSize - 1})");
                    ids.Add(id);
                }
                stdout.WriteLine(tok.Decode(ids));
            }
            return CliApp.ExitOk;
        });
        return cmd;
    }

    // Console.Out autoflushes per write; a buffered UTF-8 writer is much faster for large streams. Tests that pass
    // their own writer get that one.
    private static TextWriter Stdout(ParseResult parse)
    {
        var o = parse.InvocationConfiguration.Output;
        if (!ReferenceEquals(o, Console.Out)) return new NonClosing(o);
        return new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16) { NewLine = "\n" };
    }

    private sealed class NonClosing(TextWriter inner) : TextWriter
    {
        public override Encoding Encoding => inner.Encoding;
        public override void Write(char value) => inner.Write(value);
        public override void Write(string? value) => inner.Write(value);
        public override void WriteLine(string? value) => inner.WriteLine(value);
        protected override void Dispose(bool disposing) => inner.Flush();
    }
}
