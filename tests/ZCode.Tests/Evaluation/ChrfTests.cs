using ZCode.Evaluation.Metrics;

namespace ZCode.Tests.Evaluation;

/// <summary>chrF against the expected numbers of mjpost/sacrebleu test/test_chrf.py (tolerance 1e-4 as there).</summary>
public class ChrfTests
{
    // test_chrf: corpus_chrf(char_order=6, word_order=0, beta=3, eps_smoothing=True)
    [TestCase("abcdefg", "hijklmnop", 0.0)]
    [TestCase("a", "b", 0.0)]
    [TestCase("", "b", 0.0)]
    [TestCase("", "ref", 0.0)]
    [TestCase("", "reference", 0.0)]
    [TestCase("aa", "ab", 8.3333)]
    [TestCase("a", "a", 16.6667)]
    [TestCase("a b c", "a b c", 50.0)]
    [TestCase("a b c", "abc", 50.0)]
    [TestCase(" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
              "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .", 63.361730)]
    [TestCase(" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. ",
              "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", 64.1302698)]
    [TestCase("Niemand hat die Absicht, eine Mauer zu errichten", "Niemand hat die Absicht, eine Mauer zu errichten", 100.0)]
    public void EpsSmoothingBeta3MatchesSacreBleu(string hyp, string reference, double expected)
    {
        var chrf = new Chrf(new ChrfOptions { Beta = 3, EpsSmoothing = true });
        Assert.That(chrf.Corpus([hyp], [[reference]]).Score, Is.EqualTo(expected).Within(1e-4));
    }

    [Test]
    public void TwoSegmentCorpusMatchesSacreBleu()
    {
        // test_chrf: (["a", "b"], ["a", "c"]) -> 8.3333 with eps smoothing; test_chrf_eff_order: 50.0 without.
        Assert.That(new Chrf(new ChrfOptions { Beta = 3, EpsSmoothing = true }).Corpus(["a", "b"], [["a", "c"]]).Score, Is.EqualTo(8.3333).Within(1e-4));
        Assert.That(new Chrf(new ChrfOptions { Beta = 3 }).Corpus(["a", "b"], [["a", "c"]]).Score, Is.EqualTo(50.0).Within(1e-4));
    }

    // test_chrf_eff_order: the sacreBLEU default (effective-order averaging), beta 3.
    [TestCase("a", "a", 100.0)]
    [TestCase("", "reference", 0.0)]
    [TestCase("a b c", "a b c", 100.0)]
    [TestCase("a b c", "abc", 100.0)]
    [TestCase("", "c", 0.0)]
    [TestCase("aa", "ab", 25.0)]
    public void EffectiveOrderMatchesSacreBleu(string hyp, string reference, double expected)
        => Assert.That(new Chrf(new ChrfOptions { Beta = 3 }).Corpus([hyp], [[reference]]).Score, Is.EqualTo(expected).Within(1e-4));

    // test_chrf_keep_whitespace: remove_whitespace=False (whitespace kept), beta 3, effective order.
    [TestCase("Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
              "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", 67.3481606)]
    [TestCase("risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
              "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .", 65.2414427)]
    public void KeepingWhitespaceMatchesSacreBleu(string hyp, string reference, double expected)
        => Assert.That(new Chrf(new ChrfOptions { Beta = 3, Whitespace = true }).Corpus([hyp], [[reference]]).Score, Is.EqualTo(expected).Within(1e-4));

    // test_chrf_sentence_level: sentence_chrf(eps_smoothing=True), default beta 2.
    [TestCase("Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
              "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.", 39.14078509)]
    [TestCase("Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
              "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.", 31.22557079)]
    [TestCase("Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
              "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.", 57.15704367)]
    public void SentenceLevelMatchesSacreBleu(string hyp, string reference, double expected)
        => Assert.That(new Chrf(new ChrfOptions { EpsSmoothing = true }).Sentence(hyp, [reference]).Score, Is.EqualTo(expected).Within(1e-4));

    [Test]
    public void ChrfPlusPlusCountsWordNgramsAndSplitsPunctuation()
    {
        // By the definition in chrf.py: identical sentences score 100 for chrF++ too, the name gets "++" and the
        // signature nw:2; a different word order lowers only the word-bigram part.
        var chrfpp = new Chrf(new ChrfOptions { WordOrder = 2 });
        Assert.That(chrfpp.Corpus(["Hello, world!"], [["Hello, world!"]]).Score, Is.EqualTo(100.0).Within(1e-9));
        Assert.That(chrfpp.Name, Is.EqualTo("chrF2++"));
        Assert.That(chrfpp.Signature(1), Is.EqualTo("nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"));
        Assert.That(new Chrf().Signature(1), Is.EqualTo("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"));
        Assert.That(new Chrf().Corpus(["x"], [["x"]]).Format(), Is.EqualTo("chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = 100.0"));
    }

    [Test]
    public void BestReferenceIsChosenPerSegment()
    {
        // With two references the segment uses the one with the higher F (here the identical one): 100.
        Assert.That(new Chrf().Corpus(["the cat sat"], [["a dog ran"], ["the cat sat"]]).Score, Is.EqualTo(100.0).Within(1e-9));
    }
}
