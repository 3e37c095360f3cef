using ZCode.Evaluation.Metrics;

namespace ZCode.Tests.Evaluation;

/// <summary>
/// BLEU against sacreBLEU's own expected numbers. Sources: mjpost/sacrebleu test/test_bleu.py (corpus cases, max
/// order, raw_corpus_bleu = floor smoothing + tokenize none + effective order, statistics, scoring, degenerate stats)
/// and test/test_sentence_bleu.py (smoothing methods and tokenizers on one sentence, effective order on).
/// </summary>
public class BleuTests
{
    // test_bleu.py: _hyps and the two reference streams _refs.
    private static readonly string[] Hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
    private static readonly IReadOnlyList<string>[] Refs =
    [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ];

    [TestCase("13a", "exp", 48.530827)]     // test_corpus_bleu: default settings and tokenize 13a
    [TestCase("none", "exp", 49.1919566)]   // test_corpus_bleu: tokenize none
    [TestCase("intl", "exp", 43.91623493)]  // test_corpus_bleu: tokenize intl
    [TestCase("13a", "none", 48.530827)]    // test_corpus_bleu: smooth_method none
    public void CorpusBleuWithTwoReferencesMatchesSacreBleu(string tokenize, string smooth, double expected)
    {
        var score = new Bleu(new BleuOptions { Tokenize = tokenize, SmoothMethod = smooth }).Corpus(Hyps, Refs);
        Assert.That(score.Score, Is.EqualTo(expected).Within(1e-6));
    }

    [Test]
    public void EmptyHypothesesScoreZeroAndAreNotDropped()
    {
        // test_corpus_bleu: (('', '', ''), _refs) -> 0.0
        var score = new Bleu().Corpus(["", "", ""], Refs);
        Assert.That(score.Score, Is.EqualTo(0.0));
        Assert.That(score.SysLen, Is.EqualTo(0));
        Assert.That(score.RefLen, Is.GreaterThan(0));
    }

    [TestCase(1, "77.65")]  // test_max_ngram_order
    [TestCase(2, "60.50")]
    [TestCase(3, "53.93")]
    [TestCase(4, "48.53")]
    [TestCase(5, "46.14")]
    [TestCase(6, "43.28")]
    public void MaxNgramOrderMatchesSacreBleu(int order, string expected)
        => Assert.That(PyText.Fixed(new Bleu(new BleuOptions { MaxNgramOrder = order }).Corpus(Hyps, Refs).Score, 2), Is.EqualTo(expected));

    private static BleuScore Raw(string[] hyps, string[] refs, double? floor)
        => new Bleu(new BleuOptions { Tokenize = "none", SmoothMethod = "floor", SmoothValue = floor, EffectiveOrder = true })
            .Corpus(hyps, [refs]);

    [TestCase(new[] { "this is a test", "another test" }, new[] { "ref1", "ref2" }, 0.0)]  // test_raw_bleu (#141)
    [TestCase(new[] { "this is a test" }, new[] { "this is a test" }, 100.0)]             // test_raw_bleu: perfect = 100
    [TestCase(new[] { "this is a fest" }, new[] { "this is a test" }, 22.3606797749979)]  // test_raw_bleu
    [TestCase(new[] { "test" }, new[] { "a test" }, 36.78794411714425)]                   // test_effective_order
    [TestCase(new[] { "a test" }, new[] { "a test" }, 100.0)]                             // test_effective_order
    [TestCase(new[] { "a little test" }, new[] { "a test" }, 3.218297948685433)]          // test_effective_order
    public void RawCorpusBleuMatchesSacreBleu(string[] hyps, string[] refs, double expected)
        => Assert.That(Raw(hyps, refs, 0.01).Score, Is.EqualTo(expected).Within(1e-6));

    [Test]
    public void StatisticsAndFloorOffsetMatchSacreBleu()
    {
        // test_statistics and test_offset: counts [4,2,1,0], totals [6,5,4,3]; floor 0 -> 0, default floor 0.1 -> 0.1555722182.
        string[] hyp = ["am I am a character sequence"], reference = ["I am a symbol string sequence a a"];
        var withDefault = Raw(hyp, reference, null);
        Assert.That(withDefault.Counts, Is.EqualTo(new double[] { 4, 2, 1, 0 }));
        Assert.That(withDefault.Totals, Is.EqualTo(new double[] { 6, 5, 4, 3 }));
        Assert.That(withDefault.Score / 100, Is.EqualTo(0.1555722182).Within(1e-8));
        Assert.That(Raw(hyp, reference, 0.0).Score, Is.EqualTo(0.0));
    }

    [Test]
    public void ComputeFromStatisticsMatchesSacreBleu()
    {
        // test_scoring: compute_bleu([9,7,5,3], [10,8,6,4], 11, 11) with no smoothing = 0.8375922397.
        var s = Bleu.Compute([9, 7, 5, 3], [10, 8, 6, 4], 11, 11, new BleuOptions { SmoothMethod = "none" });
        Assert.That(s.Score / 100, Is.EqualTo(0.8375922397).Within(1e-8));
        // test_degenerate_statistics: floor smoothing never rescues these to a non-zero score.
        Assert.That(Bleu.Compute([0, 0, 0, 0], [4, 4, 2, 1], 0, 1, new BleuOptions { SmoothMethod = "floor", SmoothValue = 0 }).Score, Is.EqualTo(0));
        Assert.That(Bleu.Compute([0, 0, 0, 0], [10, 11, 12, 0], 14, 10, new BleuOptions { SmoothMethod = "floor", SmoothValue = 0 }).Score, Is.EqualTo(0));
        Assert.That(Bleu.Compute([6, 5, 4, 0], [6, 5, 4, 3], 6, 6, new BleuOptions { SmoothMethod = "floor", SmoothValue = 0 }).Score, Is.EqualTo(0));
        Assert.That(Bleu.Compute([0, 0, 0, 0], [0, 0, 0, 0], 1, 5, new BleuOptions { SmoothMethod = "floor", SmoothValue = 0.01 }).Score, Is.EqualTo(0));
    }

    // test_sentence_bleu.py (#98): sentence BLEU with effective order; tolerance 1e-3 as there.
    private const string Ref98 = "producţia de zahăr brut se exprimă în zahăr alb;";
    private const string Sys98 = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";

    [TestCase("exp", null, false, "13a", 8.493)]
    [TestCase("none", null, false, "13a", 0.0)]
    [TestCase("floor", null, false, "13a", 4.51688)]
    [TestCase("floor", 0.1, false, "13a", 4.51688)]
    [TestCase("floor", 0.5, false, "13a", 10.10)]
    [TestCase("add-k", null, false, "13a", 14.882)]
    [TestCase("add-k", 1.0, false, "13a", 14.882)]
    [TestCase("add-k", 2.0, false, "13a", 21.389)]
    [TestCase("exp", null, false, "none", 7.347)]
    [TestCase("exp", null, false, "intl", 8.493)]
    [TestCase("exp", null, false, "char", 40.8759)]
    [TestCase("exp", null, true, "char", 42.0267)]
    public void SentenceBleuSmoothingAndTokenizersMatchSacreBleu(string smooth, double? value, bool lowercase, string tok, double expected)
    {
        var bleu = new Bleu(new BleuOptions { SmoothMethod = smooth, SmoothValue = value, Lowercase = lowercase, Tokenize = tok, EffectiveOrder = true });
        Assert.That(bleu.Sentence(Sys98, [Ref98]).Score, Is.EqualTo(expected).Within(1e-3));
    }

    [TestCase("exp")]
    [TestCase("none")]
    [TestCase("floor")]
    [TestCase("add-k")]
    public void NoMatchIsZeroWhateverTheSmoothing(string smooth)
    {
        // test_api_sentence_bleu_zero (#141): "this is a cat" vs "okay thanks".
        var bleu = new Bleu(new BleuOptions { SmoothMethod = smooth, EffectiveOrder = true });
        Assert.That(bleu.Sentence("this is a cat", ["okay thanks"]).Score, Is.EqualTo(0.0));
    }

    [Test]
    public void SignatureAndTextLineFollowSacreBleuFormat()
    {
        // Signature layout of sacreBLEU 2.x (metrics/bleu.py BLEUSignature + base.Signature.format): nrefs, case, eff,
        // tok, smooth (with [value:.2f] for floor/add-k), version last.
        Assert.That(new Bleu().Signature(1), Is.EqualTo("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"));
        Assert.That(new Bleu(new BleuOptions { SmoothMethod = "floor", Lowercase = true, Tokenize = "intl" }).Signature(2),
            Is.EqualTo("nrefs:2|case:lc|eff:no|tok:intl|smooth:floor[0.10]|version:2.6.0"));
        Assert.That(new Bleu(new BleuOptions { SmoothMethod = "add-k" }).Signature(1), Does.Contain("smooth:add-k[1.00]"));
        var line = new Bleu().Corpus(["a b c d"], [["a b c d"]]).Format();
        Assert.That(line, Is.EqualTo("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 100.0 " +
                                     "100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 4 ref_len = 4)"));
    }

    [Test]
    public void BrevityPenaltyUsesTheClosestReferenceLength()
    {
        // By the definition in compute_bleu: c = 2, closest r = 3 (of 3 and 6) -> BP = exp(1 - 3/2).
        var s = new Bleu(new BleuOptions { Tokenize = "none" }).Corpus(["a b"], [["a b c"], ["a b c d e f"]]);
        Assert.That(s.RefLen, Is.EqualTo(3));
        Assert.That(s.Bp, Is.EqualTo(Math.Exp(1 - 1.5)).Within(1e-12));
    }

    [TestCase(0.25, 1, "0.2")]    // Python: f"{0.25:.1f}" == '0.2' (exact tie, half to even)
    [TestCase(0.35, 1, "0.3")]    // 0.35 is 0.34999999999999997779... in binary
    [TestCase(48.530827, 2, "48.53")]
    [TestCase(99.95, 1, "100.0")] // 99.9500000000000028... rounds up
    [TestCase(0.0, 1, "0.0")]
    public void FixedFormattingEqualsPython(double x, int digits, string expected)
        => Assert.That(PyText.Fixed(x, digits), Is.EqualTo(expected));
}
