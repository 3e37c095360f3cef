using TorchSharp;
using ZCode.Config;
using ZCode.Evaluation;
using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Tests.Evaluation;

/// <summary>Incremental decoding (key/value cache) against full recomputation, and beam search behaviour.</summary>
public class BeamSearchTests
{
    [TestCase("sinusoidal", 0.0)]
    [TestCase("learned", 0.0)]
    public void DecodeStepLogitsEqualFullPrefixRecomputation(string positions, double evalCapacityFactor)
    {
        torch.manual_seed(3);
        var cfg = CopyModel.Config(evalCapacityFactor);
        cfg.Positions = positions;
        using var model = new Seq2SeqTransformer(cfg, CopyModel.Pad);
        model.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var src = torch.randint(CopyModel.FirstSymbol, CopyModel.Vocab, [3, 7]);
        src[1, 5] = CopyModel.Pad;
        src[1, 6] = CopyModel.Pad;
        var prefix = torch.randint(CopyModel.FirstSymbol, CopyModel.Vocab, [3, 9]);
        prefix[.., 0] = CopyModel.Bos;
        var srcMask = src.ne(CopyModel.Pad);
        var memory = model.Encode(src, srcMask);
        using var cache = model.StartDecoding(memory, srcMask);
        for (int t = 0; t < prefix.shape[1]; t++)
        {
            var step = model.DecodeStep(prefix[.., t], cache);
            var full = model.DecodeLast(prefix.narrow(1, 0, t + 1), memory, srcMask);
            var reference = model.Decode(prefix.narrow(1, 0, t + 1), memory, srcMask).select(1, t);
            Assert.That((step - full).abs().max().item<float>(), Is.LessThan(1e-4), $"step {t}");
            Assert.That((full - reference).abs().max().item<float>(), Is.LessThan(1e-5), $"step {t}");
        }
    }

    [TestCase(4)]
    [TestCase(1)]
    public void CachedBeamSearchGivesTheSameHypothesesAsRecomputation(int beam)
    {
        // Eval capacity 0 (no dropping): with a capacity limit, which tokens an expert drops depends on which tokens
        // are routed together (one step's rows with the cache, every prefix position without it), so only a
        // no-drop model is expected to agree exactly.
        using var model = CopyModel.WithoutEvalDropping();
        var sources = CopyModel.Sequences(new Random(5), 40).Select(CopyModel.Source).ToList();
        var options = new BeamSearchOptions { Beam = beam, MaxLenA = 1.0, MaxLenB = 2 };
        var cached = BatchedDecoder.Decode(model, sources, CopyModel.Bos, CopyModel.Eos, options, 16);
        var recomputed = BatchedDecoder.Decode(model, sources, CopyModel.Bos, CopyModel.Eos, options with { UseCache = false }, 16);
        for (int i = 0; i < sources.Count; i++)
        {
            Assert.That(cached[i].Tokens, Is.EqualTo(recomputed[i].Tokens), $"sentence {i}");
            Assert.That(cached[i].Score, Is.EqualTo(recomputed[i].Score).Within(1e-4), $"sentence {i}");
        }
    }

    [Test]
    public void OutputIsInInputOrderAndIndependentOfBatchSize()
    {
        var model = CopyModel.Trained;
        var sources = CopyModel.Sequences(new Random(9), 30).Select(CopyModel.Source).ToList();
        var options = new BeamSearchOptions { Beam = 3 };
        var one = BatchedDecoder.Decode(model, sources, CopyModel.Bos, CopyModel.Eos, options with { UseCache = true }, 1);
        var many = BatchedDecoder.Decode(model, sources, CopyModel.Bos, CopyModel.Eos, options, 7);
        int same = Enumerable.Range(0, sources.Count).Count(i => one[i].Tokens.SequenceEqual(many[i].Tokens));
        // MoE capacity depends on the batch, so allow a rare difference; the order must be right for nearly all.
        Assert.That(same, Is.GreaterThanOrEqualTo(sources.Count - 1));
        int copied = Enumerable.Range(0, sources.Count).Count(i => many[i].Tokens.SequenceEqual(sources[i][1..^1]));
        Assert.That(copied, Is.GreaterThanOrEqualTo(sources.Count * 9 / 10), "the copy model copies its input");
    }

    [Test]
    public void LengthLimitsAndNoRepeatNgramAreHonoured()
    {
        var model = CopyModel.Trained;
        var sources = new List<int[]> { CopyModel.Source([5, 6, 5, 6, 5, 6, 7, 8]) };
        var capped = BatchedDecoder.Decode(model, sources, CopyModel.Bos, CopyModel.Eos,
            new BeamSearchOptions { Beam = 2, MaxLenA = 0, MaxLenB = 3 }, 4);
        Assert.That(capped[0].Tokens, Has.Length.LessThanOrEqualTo(3), "max length a*src+b = 3 tokens before EOS");
        var exact = BatchedDecoder.Decode(model, sources, CopyModel.Bos, CopyModel.Eos,
            new BeamSearchOptions { Beam = 2, MinLen = 3, MaxLenA = 0, MaxLenB = 3 }, 4);
        Assert.That(exact[0].Tokens, Has.Length.EqualTo(3), "min length = max length = 3");
        var longer = BatchedDecoder.Decode(model, sources, CopyModel.Bos, CopyModel.Eos,
            new BeamSearchOptions { Beam = 2, MinLen = 12, MaxLenA = 0, MaxLenB = 20 }, 4);
        Assert.That(longer[0].Tokens.Length, Is.GreaterThanOrEqualTo(12), "no EOS before min length");
        var noRepeat = BatchedDecoder.Decode(model, sources, CopyModel.Bos, CopyModel.Eos,
            new BeamSearchOptions { Beam = 2, NoRepeatNgram = 2 }, 4)[0].Tokens;
        var bigrams = noRepeat.Zip(noRepeat.Skip(1)).ToList();
        Assert.That(bigrams.Distinct().Count(), Is.EqualTo(bigrams.Count), string.Join(' ', noRepeat));
    }
}
