using ZCode.Config;
using ZCode.Text;

namespace ZCode.Data.Shards;

/// <summary>One corpus of the <c>data</c> section with canonical languages and indices into <see cref="DataPlan.Files"/>.</summary>
public sealed record PlannedCorpus(string Key, string Section, string Src, string Tgt, int SrcFile, int TgtFile);

/// <summary>
/// The corpora of a configuration with canonical languages and their files de-duplicated: a file used by several
/// corpora (English in every English-centric pair, a target side reused as monolingual text) is tokenized once. The
/// config validator (ConfigValidator.ValidateRun) has checked paths and languages; a violation here is a bug.
/// </summary>
public sealed class DataPlan
{
    public string SpmPath { get; private init; } = "";
    public List<string> Files { get; } = new();
    public List<PlannedCorpus> Corpora { get; } = new();

    public static DataPlan Build(ZCodeConfig config)
    {
        var data = config.Data;
        if (string.IsNullOrWhiteSpace(data.SpmModel) || string.IsNullOrWhiteSpace(data.ShardDir))
            throw new InvalidOperationException("data.spm_model and data.shard_dir must be validated before planning");
        var plan = new DataPlan { SpmPath = config.ResolvePath(data.SpmModel) };
        var allowed = data.Languages.Select(Resolve).ToHashSet();
        var fileIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        int File(string path)
        {
            var full = config.ResolvePath(path);
            if (!fileIndex.TryGetValue(full, out var i))
            {
                fileIndex[full] = i = plan.Files.Count;
                plan.Files.Add(full);
            }
            return i;
        }
        string Lang(string value)
        {
            var code = Resolve(value);
            if (allowed.Count > 0 && !allowed.Contains(code))
                throw new InvalidOperationException($"language {code} is not in data.languages: the config was not validated");
            return code;
        }

        foreach (var (list, section) in new[] { (data.Parallel, "parallel"), (data.Valid, "valid"), (data.Test, "test") })
            for (var i = 0; i < list.Count; i++)
            {
                var e = list[i];
                var (src, tgt) = (Lang(e.Src), Lang(e.Tgt));
                if (src == tgt) throw new InvalidOperationException($"data.{section}[{i}] pairs {src} with itself: the config was not validated");
                plan.Corpora.Add(new PlannedCorpus($"data.{section}[{i}]", section, src, tgt, File(e.SrcPath), File(e.TgtPath)));
            }
        for (var i = 0; i < data.Monolingual.Count; i++)
        {
            var e = data.Monolingual[i];
            var lang = Lang(e.Lang);
            plan.Corpora.Add(new PlannedCorpus($"data.monolingual[{i}]", "monolingual", lang, lang, File(e.Path), -1));
        }
        return plan;
    }

    private static string Resolve(string value) => Languages.TryResolve(value, out var code)
        ? code
        : throw new InvalidOperationException($"language '{value}' is unknown: the config was not validated");
}
