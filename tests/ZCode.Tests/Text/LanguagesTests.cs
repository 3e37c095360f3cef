using ZCode.Tests.Data;
using ZCode.Text;

namespace ZCode.Tests.Text;

public class LanguagesTests
{
    [Test]
    public void RegistryHasFiftyUniqueLanguagesWithScriptsAndAliases()
    {
        Assert.That(Languages.All, Has.Count.EqualTo(50));
        Assert.That(Languages.Codes, Is.Unique);
        Assert.That(Languages.All.Select(l => l.Iso639_1), Is.Unique);
        Assert.That(Languages.All.Select(l => l.Script).Distinct().Count(), Is.EqualTo(20));
        foreach (var l in Languages.All)
        {
            Assert.That(l.Code, Does.Match("^[a-z]{3}_[A-Z][a-z]{3}$"));
            Assert.That(l.Code, Does.EndWith("_" + l.Script));
            Assert.That(Languages.IsCanonical(l.Code));
            Assert.That(Languages.Resolve(l.Code), Is.EqualTo(l.Code));
            Assert.That(Languages.Resolve(l.Iso639_1), Is.EqualTo(l.Code));
        }
    }

    [TestCase("en", "eng_Latn")]
    [TestCase("EN", "eng_Latn")]
    [TestCase("eng", "eng_Latn")]
    [TestCase("eng-Latn", "eng_Latn")]
    [TestCase("ENG_LATN", "eng_Latn")]
    [TestCase("de", "deu_Latn")]
    [TestCase("zh", "zho_Hans")]
    [TestCase("zho-CN", "zho_Hans")]
    [TestCase("fa", "pes_Arab")]
    [TestCase("fas", "pes_Arab")]
    [TestCase("sw", "swh_Latn")]
    [TestCase("swa", "swh_Latn")]
    [TestCase("aze-Latn", "azj_Latn")]
    [TestCase("ar", "arb_Arab")]
    [TestCase(" ja ", "jpn_Jpan")]
    public void ResolvesCodesAndAliases(string input, string expected)
    {
        Assert.That(Languages.Resolve(input), Is.EqualTo(expected));
    }

    [TestCase("eng_Ltn", "eng_Latn")]
    [TestCase("deu_latin", "deu_Latn")]
    [TestCase("rus_Cyrl1", "rus_Cyrl")]
    [TestCase("egn_Latn", "eng_Latn")]
    public void UnknownCodeSuggestsClosest(string input, string suggestion)
    {
        var e = Assert.Throws<UserInputException>(() => Languages.Resolve(input))!;
        Assert.That(e.Message, Does.Contain($"unknown language '{input}'"));
        Assert.That(e.Message, Does.Contain($"did you mean '{suggestion}'?"));
    }

    [Test]
    public void FarOffInputHasNoSuggestion()
    {
        var e = Assert.Throws<UserInputException>(() => Languages.Resolve("klingon_Piqd"))!;
        Assert.That(e.Message, Does.Not.Contain("did you mean"));
        Assert.That(Languages.TryResolve("", out _), Is.False);
        Assert.That(Languages.TryResolve(null, out _), Is.False);
    }

    [Test]
    public void TagTokens()
    {
        Assert.That(Languages.TagToken("eng_Latn"), Is.EqualTo("<2eng_Latn>"));
        Assert.That(Languages.TagToken("de"), Is.EqualTo("<2deu_Latn>"));
        Assert.That(Languages.Get("hi").Name, Is.EqualTo("Hindi"));
        Assert.That(Languages.Get("hi").ScriptName, Is.EqualTo("Devanagari"));
    }

    [Test]
    public void SampleModelHasATagForEveryRegistryLanguage()
    {
        // The vocabulary's language tags are exactly the registry's codes (the 50 languages of the registry).
        var tags = File.ReadLines(DataTestPaths.SpmVocab).Select(l => l.Split('\t')[0])
            .Where(p => p.StartsWith("<2") && p.EndsWith('>')).Select(p => p[2..^1]).ToArray();
        Assert.That(tags, Is.EquivalentTo(Languages.Codes));
    }
}
