using ZCode.Config;
using ZCode.Text;

namespace ZCode.Data.Shards;

/// <summary>One corpus of the <c>data</c> section with canonical languages and indices into <see cref="DataPlan.Files"/>.</summary>
public sealed record PlannedCorpus(string Key, string Section, string Src, string Tgt, int SrcFile, int TgtFile);

/// <summary>
/// The corpora of a configuration, checked (languages known and listed in data.languages, paths given) and with
/// their files de-duplicated: a file used by several corpora (English in every English-centric pair, a target
/// side reused as monolingual text) is tokenized once.
/// </summary>
public sealed class DataPlan
{
    public string SpmPath { get; private init; } = "";
    public List<string> Files { get; } = new();
    public List<PlannedCorpus> Corpora { get; } = new();

    public static DataPlan Build(ZCodeConfig config)
    {
        var data = config.Data;
        if (string.IsNullOrWhiteSpace(data.SpmModel))
            throw new UserInputException("data.spm_model is empty: give the path of a SentencePiece model");
        if (string.IsNullOrWhiteSpace(data.ShardDir))
            throw new UserInputException("data.shard_dir is empty: give the folder for 'zcode data prepare' output");
        var spm = config.ResolvePath(data.SpmModel);
        if (!System.IO.File.Exists(spm))
            throw UserInputException.At(spm, 0, 0,
                "data.spm_model: SentencePiece model not found (train one with 'zcode vocab train')");
        var plan = new DataPlan { SpmPath = spm };
        var allowed = data.Languages.Select((l, i) => Resolve(l, $"data.languages[{i}]")).ToHashSet();
        var fileIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        int File(string path, string key)
        {
            if (string.IsNullOrWhiteSpace(path)) throw new UserInputException($"{key} is empty: give a text file");
            var full = config.ResolvePath(path);
            if (!System.IO.File.Exists(full)) throw UserInputException.At(full, 0, 0, $"{key}: file not found");
            if (!fileIndex.TryGetValue(full, out var i))
            {
                fileIndex[full] = i = plan.Files.Count;
                plan.Files.Add(full);
            }
            return i;
        }
        string Lang(string value, string key)
        {
            var code = Resolve(value, key);
            if (allowed.Count > 0 && !allowed.Contains(code))
                throw new UserInputException($"{key}: language {code} is not listed in data.languages; add it there");
            return code;
        }

        foreach (var (list, section) in new[] { (data.Parallel, "parallel"), (data.Valid, "valid"), (data.Test, "test") })
            for (var i = 0; i < list.Count; i++)
            {
                var e = list[i];
                var key = $"data.{section}[{i}]";
                var src = Lang(e.Src, $"{key}.src");
                var tgt = Lang(e.Tgt, $"{key}.tgt");
                if (src == tgt) throw new UserInputException($"{key}: src and tgt are both {src}; a pair needs two languages");
                plan.Corpora.Add(new PlannedCorpus(key, section, src, tgt, File(e.SrcPath, $"{key}.src_path"),
                    File(e.TgtPath, $"{key}.tgt_path")));
            }
        for (var i = 0; i < data.Monolingual.Count; i++)
        {
            var e = data.Monolingual[i];
            var key = $"data.monolingual[{i}]";
            var lang = Lang(e.Lang, $"{key}.lang");
            plan.Corpora.Add(new PlannedCorpus(key, "monolingual", lang, lang, File(e.Path, $"{key}.path"), -1));
        }
        return plan;
    }

    private static string Resolve(string value, string key)
    {
        try { return Languages.Resolve(value); }
        catch (UserInputException e) { throw new UserInputException($"{key}: {e.Message}"); }
    }
}
