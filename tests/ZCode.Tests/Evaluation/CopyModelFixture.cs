using System.Diagnostics;
using TorchSharp;
using ZCode.Config;
using ZCode.Model;
using ZCode.Training;
using static TorchSharp.torch;

namespace ZCode.Tests.Evaluation;

/// <summary>
/// A toy MoE encoder-decoder trained once (~10-20 s) to copy random symbol sequences, shared by the decoding
/// tests. Source = [tag, symbols..., EOS] like a real MT example; target = symbols + EOS.
/// </summary>
internal static class CopyModel
{
    public const int Pad = 0, Bos = 2, Eos = 3, Tag = 4, FirstSymbol = 5, Vocab = 24, MaxLen = 12;
    private static readonly Lazy<Seq2SeqTransformer> trained = new(Train);

    public static Seq2SeqTransformer Trained => trained.Value;

    public static ModelConfig Config(double evalCapacityFactor = 2.0) => new()
    {
        VocabSize = Vocab, DModel = 64, FfnDim = 128, Heads = 4, EncoderLayers = 2, DecoderLayers = 2,
        Dropout = 0.0, MaxPositions = 40,
        Moe = new MoeConfig { Experts = 4, EveryNLayers = 2, TopK = 1, CapacityFactor = 1.5,
                              EvalCapacityFactor = evalCapacityFactor, MinCapacity = 4, TokenPriority = "random" },
    };

    /// <summary>The trained weights in a model whose MoE layers never drop tokens in evaluation.</summary>
    public static Seq2SeqTransformer WithoutEvalDropping()
    {
        var model = new Seq2SeqTransformer(Config(evalCapacityFactor: 0), Pad);
        model.load_state_dict(Trained.state_dict());
        model.eval();
        return model;
    }

    /// <summary>Random symbol sequences of 4..MaxLen symbols (without tag/EOS).</summary>
    public static List<int[]> Sequences(Random rng, int count)
        => Enumerable.Range(0, count)
            .Select(_ => Enumerable.Range(0, rng.Next(4, MaxLen + 1)).Select(_ => rng.Next(FirstSymbol, Vocab)).ToArray())
            .ToList();

    public static int[] Source(int[] symbols) => [Tag, .. symbols, Eos];

    private static Seq2SeqTransformer Train()
    {
        torch.manual_seed(7);
        // One thread: these ops are small, and on a shared, busy machine more threads than free cores make LibTorch's
        // thread pool wait on each other (measured 8x slower at load 20 on 2 cores). Restored afterwards.
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        var model = new Seq2SeqTransformer(Config(), Pad);
        var opt = torch.optim.Adam(model.parameters(), lr: 3e-3);
        var rng = new Random(11);
        var clock = Stopwatch.StartNew();
        int steps = 0;
        model.train();
        for (int step = 0; step < 800; step++)
        {
            using var scope = torch.NewDisposeScope();
            var (src, tgtIn, tgtOut) = Batch(Sequences(rng, 64));
            var logits = model.call(src, tgtIn);
            var (loss, _) = Losses.LabelSmoothedCrossEntropy(logits, tgtOut, Pad, 0.0);
            var total = loss / tgtOut.ne(Pad).sum() + 0.01 * model.AuxLoss()!;
            opt.zero_grad();
            total.backward();
            opt.step();
            // Step-based, not time-based, so a busy machine trains the same model (10-20 s when idle).
            steps = step + 1;
            if (step >= 300 && total.item<float>() < 0.01) break;
        }
        model.eval();
        torch.set_num_threads(threads);
        TestContext.Progress.WriteLine($"copy model trained in {clock.Elapsed.TotalSeconds:F1}s ({steps} steps)");
        return model;
    }

    private static (Tensor Src, Tensor TgtIn, Tensor TgtOut) Batch(List<int[]> rows)
    {
        int width = MaxLen + 2;
        var src = new long[rows.Count, width];
        var tgtIn = new long[rows.Count, width];
        var tgtOut = new long[rows.Count, width];
        for (int r = 0; r < rows.Count; r++)
        {
            var s = Source(rows[r]);
            for (int i = 0; i < s.Length; i++) src[r, i] = s[i];
            tgtIn[r, 0] = Bos;
            for (int i = 0; i < rows[r].Length; i++)
            {
                tgtOut[r, i] = rows[r][i];
                tgtIn[r, i + 1] = rows[r][i];
            }
            tgtOut[r, rows[r].Length] = Eos;
        }
        return (torch.tensor(src), torch.tensor(tgtIn), torch.tensor(tgtOut));
    }
}
