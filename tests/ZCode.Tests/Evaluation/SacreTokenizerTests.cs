using ZCode.Evaluation.Metrics;

namespace ZCode.Tests.Evaluation;

/// <summary>
/// Tokenizer outputs derived by hand from sacreBLEU's rules (tokenizers/tokenizer_13a.py, tokenizer_re.py,
/// tokenizer_intl.py, tokenizer_zh.py, tokenizer_char.py), each case noting the rule it exercises.
/// </summary>
public class SacreTokenizerTests
{
    [TestCase("Hello, world!", "Hello , world !")]                  // ',' after a non-digit; '!' always separated
    [TestCase("It costs 1,000.50 dollars.", "It costs 1,000.50 dollars .")] // separators between digits stay
    [TestCase("1990-2000", "1990 - 2000")]                          // dash after a digit
    [TestCase("well-known", "well-known")]                          // dash between letters stays
    [TestCase("don't", "don't")]                                     // the apostrophe is not in mteval's class
    [TestCase("e.g. U.S.A.", "e . g . U . S . A .")]                // every period after a non-digit
    [TestCase("3. Next", "3 . Next")]                                // period before a non-digit (the space)
    [TestCase("in 2019.", "in 2019 .")]                              // 13a pads the line, so the final period splits
    [TestCase("&quot;Hi&quot; &amp; <b>", "\" Hi \" & < b >")]      // entities unescaped, then separated
    [TestCase("a<skipped>b", "ab")]                                  // <skipped> removed
    [TestCase("(x) [y] {z} a/b @c #d $e %f ^g _h `i` |j ~k", "( x ) [ y ] { z } a / b @ c # d $ e % f ^ g _ h ` i ` | j ~ k")]
    [TestCase("  many   spaces\there ", "many spaces here")]
    public void Rules13a(string input, string expected) => Assert.That(new Tokenizer13a().Tokenize(input), Is.EqualTo(expected));

    [TestCase("Hello, world!", "Hello , world !")]
    [TestCase("1,000.5", "1,000.5")]                                 // punctuation between digits stays
    [TestCase("in 2019.", "in 2019.")]                               // documented mteval-v14 quirk: no padding, stays
    [TestCase("„Guten Tag“, sagte er.", "„ Guten Tag “ , sagte er .")] // Unicode Ps/Pi/Po punctuation
    [TestCase("5€ + 3$", "5 € + 3 $")]                               // Sc/Sm symbols always separated
    [TestCase("ok👍", "ok 👍")]                                       // astral So symbol, per code point
    [TestCase("don't", "don ' t")]                                   // ' is Po between non-digits
    public void RulesIntl(string input, string expected) => Assert.That(new TokenizerIntl().Tokenize(input), Is.EqualTo(expected));

    [TestCase("我爱北京天安门。", "我 爱 北 京 天 安 门 。")]            // CJK ideographs and U+3002 (CJK punctuation block)
    [TestCase("我有100元,你呢?", "我 有 100 元 , 你 呢 ?")]              // non-CJK part gets the 13a rules
    [TestCase("ＡＢＣ", "Ａ Ｂ Ｃ")]                                     // fullwidth forms U+FF00..U+FFEF
    [TestCase("“Hello”", "“ Hello ”")]                               // U+201C/D: sacreBLEU's '\u20000' range quirk
    [TestCase("in 2019.", "in 2019.")]                               // zh does not pad like 13a
    [TestCase("𠀀x", "𠀀x")]                                          // astral Ext-B ideograph: not in the ranges as run
    public void RulesZh(string input, string expected) => Assert.That(new TokenizerZh().Tokenize(input), Is.EqualTo(expected));

    [Test]
    public void ZhRangesAreSacreBleusAsPythonEvaluatesThem()
    {
        Assert.That(TokenizerZh.IsChineseChar(0x2000), Is.False, "'\\u2000' < '\\u20000' as strings");
        Assert.That(TokenizerZh.IsChineseChar(0x2001), Is.True);
        Assert.That(TokenizerZh.IsChineseChar(0x2A6D), Is.True);
        Assert.That(TokenizerZh.IsChineseChar(0x2A6E), Is.False);
        Assert.That(TokenizerZh.IsChineseChar(0x20000), Is.False);
    }

    [Test]
    public void CharAndNone()
    {
        Assert.That(new TokenizerChar().Tokenize("ab c"), Is.EqualTo("a b   c"));   // " ".join(chars), spaces included
        Assert.That(new TokenizerChar().Tokenize("x😀"), Is.EqualTo("x 😀"));        // code points, not UTF-16 units
        Assert.That(new TokenizerNone().Tokenize(" a  b "), Is.EqualTo(" a  b "));
    }

    [Test]
    public void PythonWhitespaceAndLowercase()
    {
        Assert.That(PyText.Split("a\u001Cb\u3000c\u00A0d"), Is.EqualTo(new[] { "a", "b", "c", "d" })); // str.split()
        Assert.That(PyText.Lower("İ"), Is.EqualTo("i\u0307"));                                      // full mapping
        Assert.That(PyText.Lower("ΟΔΟΣ"), Is.EqualTo("οδος"));                                      // final sigma
    }
}
