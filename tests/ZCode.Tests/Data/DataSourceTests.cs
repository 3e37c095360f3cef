using ZCode.Config;
using ZCode.Data;

namespace ZCode.Tests.Data;

/// <summary><see cref="DataSource"/> over the shards of the shipped default config (data-samples/).</summary>
public class DataSourceTests
{
    /// <summary>The shipped default config (configs/m3-tiny.yaml), whose data section describes data-samples/.</summary>
    private static ZCodeConfig SampleConfig() => ConfigLoader.LoadFile(Path.Combine(DataTestPaths.RepoRoot, "configs", "m3-tiny.yaml"));

    private static readonly Lazy<DataSource> Sample = new(() => DataSource.FromShards(SampleConfig()));

    [Test]
    public void SampleConfigDescribesTheDataSamples()
    {
        var data = SampleConfig().Data;
        Assert.That(data.Languages, Is.EqualTo(DataTestPaths.SampleLanguages));
        Assert.That(data.Parallel, Has.Count.EqualTo(9));
        Assert.That(data.Valid, Has.Count.EqualTo(9));
        Assert.That(data.Test, Is.Empty, "data.test is documented in the file but empty");
        Assert.That(data.Monolingual, Has.Count.EqualTo(20), "UDHR and the NTREX train sides, 10 languages each");
        Assert.That((data.MaxLen, data.Temperature, data.BothDirections), Is.EqualTo((128, 5.0, true)));
        foreach (var path in data.Parallel.Concat(data.Valid).SelectMany(p => new[] { p.SrcPath, p.TgtPath })
                     .Concat(data.Monolingual.Select(m => m.Path)).Append(data.SpmModel))
            Assert.That(File.Exists(Path.Combine(SampleConfig().BaseDirectory, path)), path);
    }

    [Test]
    public void LoadsEighteenDirectionsEachWay()
    {
        var ds = Sample.Value;
        Assert.That(ds.TrainSets, Has.Count.EqualTo(18), "tasks.dae.weight is 0: MT directions only");
        Assert.That(ds.ValidSets, Has.Count.EqualTo(18));
        Assert.That(ds.TrainSets.Select(s => s.Name), Is.Unique);
        Assert.That(ds.TrainSets[0].Name, Is.EqualTo("mt:eng_Latn-deu_Latn"));
        Assert.That(ds.TrainSets[1].Name, Is.EqualTo("mt:deu_Latn-eng_Latn"));
        Assert.That(ds.ValidSets.Select(s => s.Name), Is.EqualTo(ds.TrainSets.Select(s => s.Name)));
        Assert.That(ds.Corpora.Select(c => c.Key).Take(18),
            Is.EqualTo(Enumerable.Range(0, 9).Select(i => $"data.parallel[{i}]").Concat(Enumerable.Range(0, 9).Select(i => $"data.valid[{i}]"))));
        foreach (var c in ds.Corpora.Take(9))
        {
            Assert.That(c.Lines, Is.EqualTo(1106), c.Key);
            Assert.That(c.Kept + c.SkippedEmpty + c.SkippedTooLong, Is.EqualTo(c.Lines), c.Key);
            Assert.That(c.Kept, Is.GreaterThan(1000), c.Key);
        }
        foreach (var c in ds.Corpora.Skip(9).Take(9)) Assert.That(c.Lines, Is.EqualTo(100), c.Key);
        // Equal sizes: the temperature changes nothing, every direction is equally likely.
        Assert.That(ds.Train.Probabilities.Sum(), Is.EqualTo(1.0).Within(1e-9));
    }

    [Test]
    public void TrainingBatchesAreTaggedAndWithinBudget()
    {
        var ds = Sample.Value;
        var tok = ds.Tokenizer;
        var budget = new ZCodeConfig().Train.TokensPerBatch;
        for (var i = 0; i < 50; i++)
        {
            var b = ds.Next();
            Assert.That(b.PaddedTokens, Is.LessThanOrEqualTo(budget));
            for (var r = 0; r < b.Size; r++)
            {
                var e = b.Examples[r];
                Assert.That(e.Source[0], Is.EqualTo(tok.LanguageTagId(e.TgtLang)));
                Assert.That(e.Source[^1], Is.EqualTo(tok.EosId));
                Assert.That(e.Target[^1], Is.EqualTo(tok.EosId));
                Assert.That(e.Length, Is.LessThanOrEqualTo(128));
                Assert.That(b.TgtIn[r * b.TgtLen], Is.EqualTo(tok.BosId));
            }
        }
    }

    [Test]
    public void SameConfigSameStream()
    {
        var a = DataSource.FromShards(SampleConfig());
        var b = DataSource.FromShards(SampleConfig());
        for (var i = 0; i < 20; i++)
            Assert.That(b.Next().SrcTokens, Is.EqualTo(a.Next().SrcTokens));
        var state = a.Train.State;
        var c = DataSource.FromShards(SampleConfig());
        c.Train.State = state;
        for (var i = 0; i < 20; i++)
            Assert.That(c.Next().TgtOut, Is.EqualTo(a.Next().TgtOut));
    }

    [Test]
    public void ValidBatchesHoldEveryKeptValidLineOfEachDirection()
    {
        var ds = Sample.Value;
        var cfg = SampleConfig();
        var tok = ds.Tokenizer;
        var all = ds.AllValidBatches();
        Assert.That(all, Has.Count.EqualTo(18));
        for (var k = 0; k < all.Count; k++)
        {
            var (set, batches) = all[k];
            // Direction k is valid entry k/2, forward for even k and reversed for odd k.
            var entry = cfg.Data.Valid[k / 2];
            var (srcPath, tgtPath) = k % 2 == 0 ? (entry.SrcPath, entry.TgtPath) : (entry.TgtPath, entry.SrcPath);
            var src = File.ReadAllLines(cfg.ResolvePath(srcPath)).Select(tok.Encode).ToArray();
            var tgt = File.ReadAllLines(cfg.ResolvePath(tgtPath)).Select(tok.Encode).ToArray();
            var tag = tok.LanguageTagId(set.TgtLang);
            var expected = Enumerable.Range(0, src.Length)
                .Where(i => src[i].Length is > 0 and <= 126 && tgt[i].Length is > 0 and <= 126)
                .Select(i => Key([tag, .. src[i], tok.EosId], [.. tgt[i], tok.EosId]))
                .Order(StringComparer.Ordinal).ToList();
            var got = batches.SelectMany(b => b.Examples).Select(e => Key(e.Source, e.Target)).Order(StringComparer.Ordinal).ToList();
            Assert.That(set.Count, Is.EqualTo(expected.Count), set.Name);
            Assert.That(got, Is.EqualTo(expected), $"{set.Name}: the batches hold exactly the kept lines, each once");
            Assert.That(batches.SelectMany(b => b.Examples).Select(e => (e.SrcLang, e.TgtLang)).Distinct().Single(),
                Is.EqualTo((set.SrcLang, set.TgtLang)));
        }

        static string Key(int[] source, int[] target) => string.Join(',', source) + "|" + string.Join(',', target);
    }

    [Test]
    public void LoadsTheTokenizerFromTheConfig()
    {
        Assert.That(Sample.Value.Tokenizer.ModelPath, Is.EqualTo(DataTestPaths.SpmModel));
    }

    [Test]
    public void ConfigurationErrorsNameTheKey()
    {
        // The validator rejects each edit before data prepare writes anything, so the shared sample shards stay as they are.
        UserInputException Fails(Action<ZCodeConfig> edit)
        {
            var cfg = SampleConfig();
            edit(cfg);
            return Assert.Throws<UserInputException>(() => ConfigValidator.ValidateRun(cfg, RunChecks.Training))!;
        }

        Assert.That(Fails(c => c.Data.Parallel[1].Tgt = "fra_Ltn").Message,
            Does.Contain("data.parallel[1].tgt: unknown language 'fra_Ltn'").And.Contain("did you mean 'fra_Latn'"));
        Assert.That(Fails(c => c.Data.Parallel[0].Tgt = "ita_Latn").Message,
            Does.Contain("data.parallel[0].tgt: language ita_Latn is not listed in data.languages"));
        Assert.That(Fails(c => c.Data.Valid[2].Src = c.Data.Valid[2].Tgt).Message, Does.Contain("data.valid[2].tgt: must differ from data.valid[2].src"));
        Assert.That(Fails(c => c.Data.Parallel.Clear()).Message, Does.Contain("data.parallel"));
        Assert.That(Fails(c => c.Data.Parallel[0].SrcPath = "").Message, Does.Contain("data.parallel[0].src_path: must not be empty"));
        var missing = Path.Combine(DataTestPaths.RepoRoot, "data-samples", "nope.txt");
        Assert.That(Fails(c => c.Data.Parallel[0].SrcPath = "../data-samples/nope.txt").Message,
            Does.Contain("data.parallel[0].src_path"));
        Assert.That(Fails(c => c.Data.Test = [new ParallelCorpusConfig { Src = "en", Tgt = "xx", SrcPath = "a", TgtPath = "b" }]).Message,
            Does.Contain("data.test[0].tgt: unknown language 'xx'"));
    }
}
