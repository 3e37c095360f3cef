using ZCode.Config;
using ZCode.Data;
using ZCode.Data.Shards;
using ZCode.Text;

namespace ZCode.Evaluation;

/// <summary>One translation direction of an evaluation split: its text files, read whole (no line is skipped).</summary>
public sealed record EvalDirection(string Src, string Tgt, string SrcPath, string TgtPath)
{
    public string Name => $"{Src}-{Tgt}";
}

/// <summary>Every line of a direction, in file order: model-ready source ids and the reference text.</summary>
public sealed record EvalInputs(IReadOnlyList<int[]> Sources, IReadOnlyList<string> References);

/// <summary>Finds the evaluation directions of a config and reads their inputs from the prepared shards.</summary>
public static class MtEvaluation
{
    /// <summary>Splits that configs can name: <c>data.valid</c> and <c>data.test</c>.</summary>
    public static readonly IReadOnlyList<string> Splits = ["valid", "test"];

    /// <summary>
    /// Directions of <c>data.&lt;split&gt;</c> in config order (each entry, then its reverse when
    /// <c>data.both_directions</c>), restricted to <paramref name="pairs"/> ("en-de,deu_Latn-eng_Latn") when given.
    /// </summary>
    public static List<EvalDirection> Directions(ZCodeConfig config, string split, string? pairs)
    {
        var entries = split switch
        {
            "valid" => config.Data.Valid,
            "test" => config.Data.Test,
            _ => throw new UserInputException($"--split {split}: must be one of {string.Join(", ", Splits)}"),
        };
        if (entries.Count == 0)
            throw new UserInputException(split == "test"
                ? "--split test: the checkpoint's config has no data.test entries; add test corpora under data.test " +
                  "({src, tgt, src_path, tgt_path}, like data.valid) to the training config, or to the config stored in " +
                  "the checkpoint's manifest.json"
                : $"data.{split} is empty: nothing to evaluate");
        var all = new List<EvalDirection>();
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            string src = Resolve(e.Src, $"data.{split}[{i}].src"), tgt = Resolve(e.Tgt, $"data.{split}[{i}].tgt");
            string srcPath = config.ResolvePath(e.SrcPath), tgtPath = config.ResolvePath(e.TgtPath);
            Add(all, new EvalDirection(src, tgt, srcPath, tgtPath));
            if (config.Data.BothDirections) Add(all, new EvalDirection(tgt, src, tgtPath, srcPath));
        }
        if (string.IsNullOrWhiteSpace(pairs)) return all;

        var chosen = new List<EvalDirection>();
        foreach (var pair in pairs.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var sides = pair.Split('-');
            if (sides.Length != 2) throw new UserInputException($"--pairs: '{pair}' is not SRC-TGT (e.g. en-de)");
            string src = Resolve(sides[0], $"--pairs {pair}"), tgt = Resolve(sides[1], $"--pairs {pair}");
            var match = all.FirstOrDefault(d => d.Src == src && d.Tgt == tgt)
                ?? throw new UserInputException($"--pairs: {src}-{tgt} is not in data.{split}; available: {string.Join(", ", all.Select(d => d.Name))}");
            if (!chosen.Contains(match)) chosen.Add(match);
        }
        return chosen;
    }

    // Two valid entries may give the same direction (e.g. a pair listed both ways with both_directions): keep the first.
    private static void Add(List<EvalDirection> list, EvalDirection d)
    {
        if (!list.Any(x => x.Src == d.Src && x.Tgt == d.Tgt)) list.Add(d);
    }

    private static string Resolve(string language, string key)
    {
        try { return Languages.Resolve(language); }
        catch (UserInputException e) { throw new UserInputException($"{key}: {e.Message}"); }
    }

    /// <summary>
    /// The inputs of <paramref name="direction"/> from shards <paramref name="prepared"/> for the config it came from:
    /// source ids from the shard of the source file, which holds every line (the keep lists that drop empty and
    /// over-long lines only filter training), and the references as the target file's text (BLEU and chrF score the
    /// original text, not decoded pieces), read with the line reader <c>data prepare</c> uses so line i is the same
    /// line in both.
    /// </summary>
    public static EvalInputs ReadInputs(PrepareResult prepared, EvalDirection direction, SpmTokenizer tokenizer)
    {
        var references = Utf8LineReader.ReadLines(direction.TgtPath).ToList();
        using var shard = prepared.OpenShard(direction.SrcPath);
        if (shard.Lines != references.Count)
            throw new UserInputException($"{direction.TgtPath} has {references.Count} lines but the shard of {direction.SrcPath} " +
                                         $"has {shard.Lines}: a file changed after the shards were prepared; run the command again");
        int tag = tokenizer.LanguageTagId(direction.Tgt);
        var sources = new int[references.Count][];
        for (int i = 0; i < sources.Length; i++)
            sources[i] = MtExample.Source(shard, i, tag, tokenizer.EosId);
        return new EvalInputs(sources, references);
    }
}
