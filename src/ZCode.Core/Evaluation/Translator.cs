using System.Diagnostics;
using ZCode.Data;
using ZCode.Model;
using ZCode.Text;

namespace ZCode.Evaluation;

/// <summary>Text in, text out: SentencePiece-encodes sources into the MT source layout (<see cref="MtExample"/>, as in
/// training), beam-searches them in length-sorted batches and detokenizes the best hypotheses, in input order.</summary>
public sealed class Translator(Seq2SeqTransformer model, SpmTokenizer tokenizer, BeamSearchOptions options, int batchSize)
{
    /// <summary>The model input for one line of text; <paramref name="targetTagId"/> is the target language's tag
    /// (<see cref="SpmTokenizer.LanguageTagId"/>).</summary>
    public static int[] Source(SpmTokenizer tokenizer, string line, int targetTagId)
        => MtExample.Source(tokenizer.Encode(line), targetTagId, tokenizer.EosId);

    /// <summary>Translations of <paramref name="lines"/> into <paramref name="targetLanguage"/> (code or alias), with
    /// the number of generated tokens and the decoding time.</summary>
    public (string[] Translations, long Tokens, TimeSpan Elapsed) Translate(IReadOnlyList<string> lines, string targetLanguage,
        Action<int>? progress = null)
    {
        int tag = tokenizer.LanguageTagId(targetLanguage);
        return Translate(lines.Select(l => Source(tokenizer, l, tag)).ToList(), progress);
    }

    /// <summary>Translations of model inputs already in the MT source layout (e.g. read from the shards by
    /// <see cref="MtEvaluation.ReadInputs"/>).</summary>
    public (string[] Translations, long Tokens, TimeSpan Elapsed) Translate(IReadOnlyList<int[]> sources, Action<int>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var hyps = BatchedDecoder.Decode(model, sources, tokenizer.BosId, tokenizer.EosId, options, batchSize, progress);
        clock.Stop();
        return (hyps.Select(h => tokenizer.Decode(h.Tokens)).ToArray(), hyps.Sum(h => (long)h.Tokens.Length), clock.Elapsed);
    }

    /// <summary>Beam settings from the config's eval section, with an optional beam override.</summary>
    public static BeamSearchOptions OptionsFrom(Config.EvalConfig eval, int? beam) => new()
    {
        Beam = beam ?? eval.Beam,
        LengthPenalty = eval.LengthPenalty,
        MaxLenA = eval.MaxLenA,
        MaxLenB = eval.MaxLenB,
    };
}
