using System.Diagnostics;
using System.Text;
using ZCode.Data;

namespace ZCode.Text;

/// <summary>Options of <see cref="VocabTrainer.Train"/> (<c>zcode vocab train</c>).</summary>
public sealed record VocabTrainOptions(IReadOnlyList<string> Inputs, int Size, string Output,
    long SampleSentences = 1_000_000, double CharacterCoverage = 0.9995, double Temperature = 5.0, long Seed = 1,
    int Threads = 0);

/// <summary>
/// Trains a SentencePiece unigram model with <c>spm_train</c> on a language-balanced sample: each input file (one
/// language) contributes k_i = K·p_i lines with p_i ∝ n_i^(1/T), so small languages are not drowned by large ones
/// (the same temperature idea as the training sampler). The model carries every language tag and the task tags as
/// user-defined symbols and the ids pad=0 unk=1 bos=2 eos=3, like data-samples/spm.model.
/// </summary>
public static class VocabTrainer
{
    /// <summary>User-defined symbols in id order from 4: the 50 language tags (alphabetical), then task tags.</summary>
    public static IReadOnlyList<string> UserSymbols { get; } =
        Languages.Codes.Select(c => $"<2{c}>").Concat(new[] { Languages.MtTag, Languages.DaeTag, Languages.MaskToken }).ToArray();

    /// <summary>Full path of a SentencePiece tool (<c>spm_train</c>) on PATH; a <see cref="UserInputException"/> naming the
    /// package when absent.</summary>
    public static string FindTool(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            if (dir.Length == 0) continue;
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        throw new UserInputException(
            $"{name} not found on PATH: install SentencePiece's command-line tools (Debian/Ubuntu package 'sentencepiece': apt-get install sentencepiece)");
    }

    /// <summary>Lines taken from each input for the sample (same order as the inputs).</summary>
    public static long[] SampleCounts(IReadOnlyList<long> lines, long sampleSentences, double temperature)
    {
        var p = TemperatureSampler.ComputeProbabilities(lines, temperature);
        return p.Select(x => (long)Math.Round(x * sampleSentences)).ToArray();
    }

    /// <summary>Writes the balanced sample and runs spm_train; returns the model path.</summary>
    public static string Train(VocabTrainOptions o, TextWriter log)
    {
        if (o.Inputs.Count == 0) throw new UserInputException("--input: give at least one text file");
        if (o.Size < UserSymbols.Count + 8)
            throw new UserInputException($"--size {o.Size} is too small: the tags alone take {UserSymbols.Count + 4} ids");
        if (o.SampleSentences < 1) throw new UserInputException($"--sample-sentences must be positive, got {o.SampleSentences}");
        if (o.CharacterCoverage is <= 0 or > 1)
            throw new UserInputException($"--character-coverage must be in (0, 1], got {o.CharacterCoverage}");
        var spmTrain = FindTool("spm_train");
        var output = Path.GetFullPath(o.Output);
        var prefix = output.EndsWith(".model", StringComparison.Ordinal) ? output[..^".model".Length] : output;
        Directory.CreateDirectory(Path.GetDirectoryName(prefix)!);

        // Count lines (strict UTF-8: a bad file fails here, naming file:line, not inside spm_train).
        var inputs = o.Inputs.Select(Path.GetFullPath).ToArray();
        var counts = inputs.Select(f => (long)Utf8LineReader.ReadLines(f).Count(l => l.Length > 0)).ToArray();
        for (var i = 0; i < inputs.Length; i++)
            if (counts[i] == 0) throw UserInputException.At(inputs[i], 0, 0, "no non-empty lines");
        var take = SampleCounts(counts, o.SampleSentences, o.Temperature);

        var sample = prefix + ".sample.txt";
        long written = 0;
        using (var w = new StreamWriter(sample, false, new UTF8Encoding(false)) { NewLine = "\n" })
            for (var i = 0; i < inputs.Length; i++)
            {
                var times = Repetitions(counts[i], take[i], new DeterministicRandom(DeterministicRandom.DeriveSeed(o.Seed, i)));
                long j = 0;
                foreach (var line in Utf8LineReader.ReadLines(inputs[i]))
                {
                    if (line.Length == 0) continue;
                    for (var r = 0; r < times[j]; r++) { w.WriteLine(line); written++; }
                    j++;
                }
                log.WriteLine($"{inputs[i]}: {counts[i]:N0} lines, {take[i]:N0} in the sample");
            }

        var args = new List<string>
        {
            $"--input={sample}", $"--model_prefix={prefix}", "--model_type=unigram", $"--vocab_size={o.Size}",
            $"--character_coverage={o.CharacterCoverage.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
            $"--input_sentence_size={Math.Max(written, 1)}", "--shuffle_input_sentence=true", $"--random_seed={o.Seed}",
            $"--num_threads={(o.Threads > 0 ? o.Threads : Environment.ProcessorCount)}",
            "--pad_id=0", "--unk_id=1", "--bos_id=2", "--eos_id=3",
            $"--user_defined_symbols={string.Join(',', UserSymbols)}", "--minloglevel=1",
        };
        var psi = new ProcessStartInfo(spmTrain) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        File.Delete(sample);
        if (process.ExitCode != 0)
        {
            // spm_train ends with a generic "Program terminated..." line; the reason is the line before it.
            var last = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .LastOrDefault(l => !l.StartsWith("Program terminated", StringComparison.Ordinal)) ?? "";
            throw new InvalidOperationException($"spm_train failed (exit {process.ExitCode}): {last}");
        }
        return prefix + ".model";
    }

    /// <summary>
    /// How often each of <paramref name="n"/> lines goes into the sample so that the total is <paramref name="k"/>:
    /// whole copies of the file, then a random subset (without replacement) for the remainder.
    /// </summary>
    internal static byte[] Repetitions(long n, long k, DeterministicRandom rng)
    {
        var times = new byte[n];
        var whole = k / n;
        if (whole > 255) throw new UserInputException($"--sample-sentences asks for {whole} copies of a {n}-line file; lower it");
        Array.Fill(times, (byte)whole);
        var rest = (int)(k % n);
        var order = new int[n];
        for (var i = 0; i < n; i++) order[i] = i;
        for (var i = 0; i < rest; i++)
        {
            var j = i + (int)rng.NextLong(n - i);
            (order[i], order[j]) = (order[j], order[i]);
            times[order[i]]++;
        }
        return times;
    }
}
