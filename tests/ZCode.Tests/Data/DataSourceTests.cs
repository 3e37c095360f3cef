using ZCode.Config;
using ZCode.Data;

namespace ZCode.Tests.Data;

public class DataSourceTests
{
    /// <summary>The shipped default config (configs/m3-tiny.yaml), whose data section describes data-samples/.</summary>
    private static ZCodeConfig SampleConfig() => ConfigLoader.LoadFile(Path.Combine(DataTestPaths.RepoRoot, "configs", "m3-tiny.yaml"));

    /// <summary>Relative paths in configs/m3-tiny.yaml resolve against configs/.</summary>
    private static string SampleBase => Path.Combine(DataTestPaths.RepoRoot, "configs");

    private static readonly Lazy<DataSource> Sample = new(() =>
        DataSource.Load(SampleConfig(), SampleConfig().BaseDirectory, DataTestPaths.Tokenizer));

    [Test]
    public void SampleConfigDescribesTheDataSamples()
    {
        var data = SampleConfig().Data;
        Assert.That(data.Languages, Is.EqualTo(DataTestPaths.SampleLanguages));
        Assert.That(data.Parallel, Has.Count.EqualTo(9));
        Assert.That(data.Valid, Has.Count.EqualTo(9));
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
        Assert.That(ds.TrainSets, Has.Count.EqualTo(18));
        Assert.That(ds.ValidSets, Has.Count.EqualTo(18));
        Assert.That(ds.TrainSets.Select(s => s.Name), Is.Unique);
        Assert.That(ds.TrainSets[0].Name, Is.EqualTo("mt:eng_Latn-deu_Latn"));
        Assert.That(ds.TrainSets[1].Name, Is.EqualTo("mt:deu_Latn-eng_Latn"));
        Assert.That(ds.Corpora, Has.Count.EqualTo(18));
        foreach (var c in ds.Corpora.Take(9))
        {
            Assert.That(c.Lines, Is.EqualTo(1106), c.Key);
            Assert.That(c.Kept + c.SkippedEmpty + c.SkippedTooLong, Is.EqualTo(c.Lines), c.Key);
            Assert.That(c.Kept, Is.GreaterThan(1000), c.Key);
        }
        foreach (var c in ds.Corpora.Skip(9)) Assert.That(c.Lines, Is.EqualTo(100), c.Key);
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
        var a = DataSource.Load(SampleConfig(), SampleBase, DataTestPaths.Tokenizer);
        var b = DataSource.Load(SampleConfig(), SampleBase, DataTestPaths.Tokenizer);
        for (var i = 0; i < 20; i++)
            Assert.That(b.Next().SrcTokens, Is.EqualTo(a.Next().SrcTokens));
        var state = a.Train.State;
        var c = DataSource.Load(SampleConfig(), SampleBase, DataTestPaths.Tokenizer);
        c.Train.State = state;
        for (var i = 0; i < 20; i++)
            Assert.That(c.Next().TgtOut, Is.EqualTo(a.Next().TgtOut));
    }

    [Test]
    public void ValidBatchesCoverEveryValidLine()
    {
        var ds = Sample.Value;
        var all = ds.AllValidBatches();
        Assert.That(all, Has.Count.EqualTo(18));
        foreach (var (set, batches) in all)
        {
            Assert.That(batches.Sum(b => b.Size), Is.EqualTo(set.Count), set.Name);
            Assert.That(batches.SelectMany(b => b.Examples).Select(e => (e.SrcLang, e.TgtLang)).Distinct().Single(),
                Is.EqualTo((set.SrcLang, set.TgtLang)));
        }
    }

    [Test]
    public void LoadsTheTokenizerFromTheConfig()
    {
        var ds = DataSource.Load(SampleConfig(), SampleBase);
        Assert.That(ds.Tokenizer.ModelPath, Is.EqualTo(DataTestPaths.SpmModel));
    }

    [Test]
    public void ConfigurationErrorsNameTheKey()
    {
        UserInputException Fails(Action<ZCodeConfig> edit)
        {
            var cfg = SampleConfig();
            edit(cfg);
            return Assert.Throws<UserInputException>(() => DataSource.Load(cfg, SampleBase, DataTestPaths.Tokenizer))!;
        }

        Assert.That(Fails(c => c.Data.Parallel[1].Tgt = "fra_Ltn").Message,
            Does.StartWith("data.parallel[1].tgt: unknown language 'fra_Ltn'").And.Contain("did you mean 'fra_Latn'"));
        Assert.That(Fails(c => c.Data.Parallel[0].Tgt = "ita_Latn").Message,
            Does.StartWith("data.parallel[0].tgt: language ita_Latn is not listed in data.languages"));
        Assert.That(Fails(c => c.Data.Valid[2].Src = c.Data.Valid[2].Tgt).Message, Does.StartWith("data.valid[2]: src and tgt"));
        Assert.That(Fails(c => c.Data.Parallel.Clear()).Message, Does.StartWith("data.parallel is empty"));
        Assert.That(Fails(c => c.Data.Parallel[0].SrcPath = "").Message, Does.StartWith("data.parallel[0].src_path is empty"));
        var missing = Path.Combine(DataTestPaths.RepoRoot, "data-samples", "nope.txt");
        Assert.That(Fails(c => c.Data.Parallel[0].SrcPath = "../data-samples/nope.txt").Message,
            Is.EqualTo($"{missing}: file not found"));
        Assert.That(Fails(c => c.Data.Parallel[0].TgtPath = "../data-samples/ntrex128/valid/deu_Latn.txt").Message,
            Does.Contain("has 1106").And.Contain("has 100"));
    }
}
