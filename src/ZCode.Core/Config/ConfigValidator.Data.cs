using ZCode.Data;
using ZCode.Data.Shards;
using ZCode.Text;

namespace ZCode.Config;

public static partial class ConfigValidator
{
    /// <summary>The files and languages of the data section; returns the SentencePiece model, read.</summary>
    private static SpmModelProto DataFiles(ZCodeConfig config, ValueChecker check)
    {
        var d = config.Data;
        RequiredPath(check, "data.spm_model", d.SpmModel,
            "give the SentencePiece model, e.g. spm_model: ../data-samples/spm.model, or train one with 'zcode vocab train'");
        RequiredPath(check, "data.shard_dir", d.ShardDir, "give the folder 'zcode data prepare' writes to, e.g. shard_dir: shards");
        var spm = ReadSpm(ExistingFile(config, check, "data.spm_model", d.SpmModel, " or train one with 'zcode vocab train'"), check);

        var listed = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < d.Languages.Count; i++)
            listed.Add(Language(check, $"data.languages[{i}]", d.Languages[i], null));
        foreach (var (name, pairs, texts) in CorpusLists(d))
        {
            for (var i = 0; i < pairs.Count; i++)
            {
                var (key, c) = ($"data.{name}[{i}]", pairs[i]);
                var src = Language(check, $"{key}.src", c.Src, listed);
                var tgt = Language(check, $"{key}.tgt", c.Tgt, listed);
                check.Require(src != tgt, $"{key}.tgt: '{c.Tgt}' is the language of {key}.src ('{c.Src}', {src}); a pair needs two languages",
                    $"{key}.tgt", key);
                ExistingFile(config, check, $"{key}.src_path", c.SrcPath);
                ExistingFile(config, check, $"{key}.tgt_path", c.TgtPath);
            }
            for (var i = 0; i < texts.Count; i++)
            {
                Language(check, $"data.{name}[{i}].lang", texts[i].Lang, listed);
                ExistingFile(config, check, $"data.{name}[{i}].path", texts[i].Path);
            }
        }
        return spm;
    }

    /// <summary>
    /// The model and the tasks against the data: vocabulary size, the tags the tasks put in front of a source, a corpus
    /// for every task with weight, and (from index.json) prepared corpora that kept no line.
    /// </summary>
    private static void Training(ZCodeConfig config, SpmModelProto spm, ValueChecker check)
    {
        var (d, tasks) = (config.Data, config.Tasks);
        var spmPath = config.ResolvePath(d.SpmModel);
        check.Require(config.Model.VocabSize == spm.Pieces.Count,
            $"model.vocab_size: is {config.Model.VocabSize} but the SentencePiece model {spmPath} has {spm.Pieces.Count} pieces; " +
            $"set model.vocab_size: {spm.Pieces.Count}", "model.vocab_size", "data.spm_model");
        check.Require(tasks.Mt.Weight == 0 || d.Parallel.Count > 0,
            $"tasks.mt.weight: is {ValueChecker.Format(tasks.Mt.Weight)} but data.parallel is empty; add corpora " +
            "({src, tgt, src_path, tgt_path}) to data.parallel or set tasks.mt.weight: 0", "tasks.mt.weight", "data.parallel");
        check.Require(tasks.Dae.Weight == 0 || d.Monolingual.Count > 0,
            $"tasks.dae.weight: is {ValueChecker.Format(tasks.Dae.Weight)} but data.monolingual is empty; add texts " +
            "({lang, path}) to data.monolingual or set tasks.dae.weight: 0", "tasks.dae.weight", "data.monolingual");

        // Every translation direction starts with its target's tag (both directions reverse the pair); denoising adds
        // <dae>, the language's tag and <mask> for the masked spans.
        var tags = spm.Pieces.Where(p => p.Type == SpmPieceType.UserDefined).Select(p => p.Piece).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, pairs, texts) in CorpusLists(d))
        {
            for (var i = 0; i < pairs.Count; i++)
            {
                Tag(check, tags, spmPath, $"data.{name}[{i}].tgt", pairs[i].Tgt);
                if (d.BothDirections)
                    Tag(check, tags, spmPath, $"data.{name}[{i}].src", pairs[i].Src);
            }
            for (var i = 0; i < texts.Count && tasks.Dae.Weight > 0; i++)
                Tag(check, tags, spmPath, $"data.{name}[{i}].lang", texts[i].Lang);
        }
        foreach (var piece in new[] { Languages.DaeTag, Languages.MaskToken })
            check.Require(tasks.Dae.Weight == 0 || spm.Pieces.Any(p => p.Piece == piece),
                $"tasks.dae.weight: denoising needs the piece {piece}, which the SentencePiece model {spmPath} lacks; " +
                "train the model with 'zcode vocab train' or set tasks.dae.weight: 0", "tasks.dae.weight", "data.spm_model");
        PreparedCorpora(config, check);
    }

    /// <summary>
    /// Corpora without a usable line, read from index.json instead of tokenizing. Only when the shards are up to date:
    /// an older index says nothing about the files as they are now (and `train` prepares them again before reading).
    /// Knowing that means hashing every input, so it is done only when the index shows such a corpus.
    /// </summary>
    private static void PreparedCorpora(ZCodeConfig config, ValueChecker check)
    {
        var index = ShardIndex.TryRead(DataPreparer.IndexPath(config));
        if (index is null)
            return;
        var unusable = index.Corpora.FirstOrDefault(c => c.Section == "parallel" && c.Kept == 0);
        var texts = index.Corpora.Where(c => c.Section == "monolingual").ToList();
        var noText = config.Tasks.Dae.Weight > 0 && texts.Count > 0 && texts.All(c => c.Kept == 0);
        if ((unusable is null && !noText) || !DataPreparer.IsUpToDate(config))
            return;
        if (unusable is not null)
            check.Fail(unusable.NoUsableLines(index), unusable.Key);
        if (noText)
            check.Fail(DataSource.NoMonolingualText, "data.monolingual", "tasks.dae.weight");
    }

    /// <summary>The corpus lists of the data section in schema order: lists of pairs (parallel, valid, ...) and of texts.</summary>
    private static IEnumerable<(string Name, List<ParallelCorpusConfig> Pairs, List<MonolingualCorpusConfig> Texts)> CorpusLists(DataConfig d)
    {
        foreach (var key in ConfigKeys.For(typeof(DataConfig)))
        {
            var value = key.Property.GetValue(d);
            if (value is List<ParallelCorpusConfig> pairs)
                yield return (key.Name, pairs, []);
            else if (value is List<MonolingualCorpusConfig> texts)
                yield return (key.Name, [], texts);
        }
    }

    private static void RequiredPath(ValueChecker check, string key, string value, string fix)
        => check.Require(!string.IsNullOrWhiteSpace(value), $"{key}: not set, and it has no default; {fix} (relative paths resolve against the config file's directory)", key);

    private static string ExistingFile(ZCodeConfig config, ValueChecker check, string key, string path, string orElse = "")
    {
        var full = config.ResolvePath(path);
        check.Require(File.Exists(full), $"{key}: {full}: {(Directory.Exists(full) ? "is a directory" : "no such file")}; " +
                                         $"fix the path (relative paths resolve against {config.BaseDirectory}){orElse}", key);
        return full;
    }

    private static SpmModelProto ReadSpm(string path, ValueChecker check)
    {
        SpmModelProto? model = null;
        string? problem;
        try
        {
            model = SpmModelProto.Parse(File.ReadAllBytes(path));
            problem = model.Unsupported();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"cannot read it ({e.Message})";
        }
        catch (InvalidDataException e)
        {
            problem = $"not a SentencePiece model ({e.Message})";
        }
        check.Require(problem is null, $"data.spm_model: {path}: {problem}; train a model with 'zcode vocab train'", "data.spm_model");
        return model!;
    }

    /// <summary>The canonical code of a language field; unknown codes, and codes data.languages does not list, fail.</summary>
    private static string Language(ValueChecker check, string key, string value, HashSet<string>? listed)
    {
        check.Require(Languages.TryResolve(value, out var code), $"{key}: {Languages.Unknown(value)}", key);
        check.Require(listed is null || listed.Count == 0 || listed.Contains(code),
            $"{key}: language {code} is not listed in data.languages; add it there or remove this corpus", key, "data.languages");
        return code;
    }

    private static void Tag(ValueChecker check, HashSet<string> tags, string spmPath, string key, string language)
    {
        var tag = Languages.TagToken(language);
        check.Require(tags.Contains(tag),
            $"{key}: the SentencePiece model {spmPath} has no language tag {tag}; train the model with 'zcode vocab train', " +
            $"which adds the tags of all {Languages.All.Count} languages", key, "data.spm_model");
    }
}
