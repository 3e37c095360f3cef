using System.Collections;
using ZCode.Config;

namespace ZCode.Tests.Config;

/// <summary>The validator covers every schema value and names its source when there is no file.</summary>
[TestFixture]
public class ConfigValidatorTests
{
    [Test]
    public void EverySchemaValueIsChecked()
    {
        // One item in every list, so item fields are visited too.
        var config = new ZCodeConfig();
        config.Data.Languages = ["eng_Latn"];
        config.Data.Parallel = [new ParallelCorpusConfig { Src = "eng_Latn", Tgt = "deu_Latn", SrcPath = "a", TgtPath = "b" }];
        config.Data.Valid = [new ParallelCorpusConfig { Src = "eng_Latn", Tgt = "deu_Latn", SrcPath = "c", TgtPath = "d" }];
        config.Data.Test = [new ParallelCorpusConfig { Src = "eng_Latn", Tgt = "deu_Latn", SrcPath = "e", TgtPath = "f" }];
        config.Data.Monolingual = [new MonolingualCorpusConfig { Lang = "eng_Latn", Path = "m" }];
        var map = new SourceMap(new ConfigSource("test", HasPositions: false));
        var checkedPaths = ConfigValidator.Validate(config, map).CheckedPaths;
        var leaves = LeafPaths(config, "").ToList();
        Assert.That(leaves, Has.Count.GreaterThan(60));
        Assert.That(leaves.Except(checkedPaths), Is.Empty, "schema values without a check");
    }

    private static IEnumerable<string> LeafPaths(object value, string path)
    {
        if (ConfigKeys.IsScalar(value.GetType()))
            return [path];
        if (value is IList list)
            return list.Cast<object>().SelectMany((item, i) => LeafPaths(item, $"{path}[{i}]"));
        return ConfigKeys.For(value.GetType()).SelectMany(k => LeafPaths(k.Property.GetValue(value)!, ConfigKeys.Join(path, k.Name)));
    }

    [Test]
    public void ConfigBuiltInCode_ErrorNamesTheGivenSource()
    {
        var config = new ZCodeConfig();
        config.Model.Heads = 0;
        var e = Assert.Throws<UserInputException>(() => ConfigValidator.Validate(config, "manifest.json"));
        Assert.That(e!.Message, Is.EqualTo("manifest.json: model.heads: must be at least 1, got 0"));
    }

    [Test]
    public void SchemaDefaultsAreValid() => Assert.DoesNotThrow(() => ConfigValidator.Validate(new ZCodeConfig()));

    [TestCase("train.schedule=inverse_sqrt", "train.warmup_steps=0", "train.warmup_steps: must be at least 1 with train.schedule inverse_sqrt, got 0")]
    [TestCase("model.moe.every_n_layers=3", null, "model.moe.every_n_layers: must be at most the number of layers (2), or 0 for a dense model; got 3")]
    [TestCase("tasks.mt.weight=0", null, "tasks: at least one of tasks.mt.weight and tasks.dae.weight must be greater than 0")]
    [TestCase("eval.max_len_a=0", "eval.max_len_b=0", "eval.max_len_b: must be at least 1 when eval.max_len_a is 0 (output length = max_len_a * source length + max_len_b)")]
    [TestCase("data.languages=[eng_Latn, deu_Latn, eng_Latn]", null, "data.languages[2]: language 'eng_Latn' is listed twice")]
    [TestCase("data.parallel=[{src: eng_Latn, tgt: eng_Latn, src_path: a, tgt_path: b}]", null, "data.parallel[0].tgt: must differ from data.parallel[0].src ('eng_Latn')")]
    [TestCase("data.test=[{src: eng_Latn, tgt: deu_Latn, src_path: a, tgt_path: ''}]", null, "data.test[0].tgt_path: must not be empty")]
    [TestCase("train.tokens_per_batch=100", null, "train.tokens_per_batch: must be at least data.max_len (128) so the longest sentence fits a batch, got 100")]
    public void CrossFieldRules(string set1, string? set2, string expected)
    {
        var sets = set2 is null ? new[] { set1 } : [set1, set2];
        var e = Assert.Throws<UserInputException>(() => ConfigLoader.LoadDefault(sets));
        Assert.That(e!.Message, Does.EndWith(": " + expected));
    }
}
