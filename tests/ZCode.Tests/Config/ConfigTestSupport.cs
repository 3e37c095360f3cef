using System.Collections;
using ZCode.Config;

namespace ZCode.Tests.Config;

/// <summary>Temp config files, CLI runs and deep config comparison for the config tests.</summary>
internal sealed class ConfigTestSupport : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "zcode-config-tests-" + Guid.NewGuid().ToString("N"));

    public ConfigTestSupport() => Directory.CreateDirectory(_dir);

    public string Dir => _dir;

    public string Write(string yaml, string name = "test.yaml")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, yaml);
        return path;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    public static string RepoRoot => CliRunner.RepoRoot;

    public static string ShippedConfig(string name) => Path.Combine(RepoRoot, "configs", name);

    /// <summary>A data section `config validate` accepts: the sample model and one sample pair, by absolute path.</summary>
    public static string RunnableData
    {
        get
        {
            var samples = Path.Combine(RepoRoot, "data-samples");
            var train = Path.Combine(samples, "ntrex128", "train");
            return $"data:\n  spm_model: {Path.Combine(samples, "spm.model")}\n  shard_dir: shards\n  parallel:\n" +
                   $"    - {{src: eng_Latn, tgt: deu_Latn, src_path: {train}/eng_Latn.txt, tgt_path: {train}/deu_Latn.txt}}\n";
        }
    }

    /// <summary>Asserts two schema objects are equal key by key, naming the first differing dotted path.</summary>
    public static void AssertEqual(object expected, object actual, string path = "")
    {
        Assert.That(actual.GetType(), Is.EqualTo(expected.GetType()), path);
        foreach (var key in ConfigKeys.For(expected.GetType()))
        {
            var childPath = ConfigKeys.Join(path, key.Name);
            AssertValueEqual(key.Property.GetValue(expected)!, key.Property.GetValue(actual)!, childPath);
        }
    }

    private static void AssertValueEqual(object expected, object actual, string path)
    {
        if (ConfigKeys.IsScalar(expected.GetType()))
            Assert.That(actual, Is.EqualTo(expected), path);
        else if (expected is IList expectedList)
        {
            var actualList = (IList)actual;
            Assert.That(actualList, Has.Count.EqualTo(expectedList.Count), path);
            for (var i = 0; i < expectedList.Count; i++)
                AssertValueEqual(expectedList[i]!, actualList[i]!, $"{path}[{i}]");
        }
        else
            AssertEqual(expected, actual, path);
    }
}
