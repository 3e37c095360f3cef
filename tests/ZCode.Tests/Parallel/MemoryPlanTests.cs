using ZCode.Config;
using ZCode.Model;
using ZCode.Parallel;

namespace ZCode.Tests.Parallel;

/// <summary>The memory planner's arithmetic against values worked out by hand for a small config (see the comments).</summary>
public class MemoryPlanTests
{
    /// <summary>vocab 1000, d 8, ffn 16, 2 heads, 2+2 layers, 4 experts every 2nd layer (1 encoder + 1 decoder MoE layer),
    /// top-1, cf 1.0, max_len 10, 800 tokens per batch in 2 accumulation steps.</summary>
    internal static readonly string[] Small =
    [
        "model.vocab_size=1000", "model.d_model=8", "model.ffn_dim=16", "model.heads=2", "model.encoder_layers=2",
        "model.decoder_layers=2", "model.moe.experts=4", "model.moe.every_n_layers=2", "model.moe.top_k=1",
        "model.moe.capacity_factor=1.0", "data.max_len=10", "train.tokens_per_batch=800", "train.grad_accumulation=2",
        "train.dtype=float32",
    ];

    private static ZCodeConfig Config(params string[] extra) => ConfigLoader.LoadDefault([.. Small, .. extra]);

    [Test]
    public void ParameterCountsOfTheSmallConfig()
    {
        // attention 4(64+8) = 288, layer norm 16, FFN 8*16+16+16*8+8 = 280, router 4*8 = 32, embedding 1000*8 = 8000;
        // non-expert = 8000 + 2(288+32) + 2(576+48) + 2*280 + 32 + 2*32 = 10544; experts = 2 layers * 4 * 280 = 2240.
        var c = ParameterCount.Of(Config().Model);
        Assert.That((c.NonExpert, c.Expert), Is.EqualTo((10544L, 2240L)));
    }

    [Test]
    public void ActivationInputs()
    {
        // T = 800 / (2 * 4) = 100. Per token: attention 8*8 + 2*10 = 84, dense FFN 3*8 + 2*16 = 56, MoE FFN 24 + 1*1.0*48 = 72;
        // encoder 2*84 + 56 + 72 = 296, decoder 4*84 + 56 + 72 = 464, embeddings 2*2*8 = 32: 792 elements;
        // fp32: 2 MoE layers * 8 * 4 experts + 8 * 1000 vocab = 8064 bytes.
        var i = MemoryPlan.Inputs(Config(), 4);
        Assert.That(i, Is.EqualTo(new MemoryPlanInputs(4, 100, 4, 792, 8064)));
        Assert.That(MemoryPlan.Inputs(Config("train.dtype=bfloat16"), 4).ComputeBytes, Is.EqualTo(2));
    }

    [Test]
    public void ExpertParallelChoicesDivideExpertsAndDevices()
    {
        Assert.That(MemoryPlan.ExpertParallelChoices(Config().Model, 4), Is.EqualTo(new[] { 1, 2, 4 }));
        Assert.That(MemoryPlan.ExpertParallelChoices(Config().Model, 6), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(MemoryPlan.ExpertParallelChoices(Config("model.moe.every_n_layers=0").Model, 8), Is.EqualTo(new[] { 1 }));
    }

    [Test]
    public void EstimatesPerChoice()
    {
        var cfg = Config();
        var c = ParameterCount.Of(cfg.Model);
        var inputs = MemoryPlan.Inputs(cfg, 4);
        const long activations = 100 * (792 * 4 + 8064); // 1,123,200
        const long reserve = 1L << 30;

        // Stage 0, EP 2: Phi_d = 10544 + 2240/2 = 11664 -> params 4*, grads 4*, AdamW 8*.
        Assert.That(MemoryPlan.Estimate(c, inputs, 0, false, 2),
            Is.EqualTo(new MemoryEstimate(0, false, 2, 46656, 0, 46656, 93312, activations, reserve, 0)));
        // Stage 1, EP 1: Phi_d = 12784; optimizer 12 * Phi/N = 12 * 3196.
        Assert.That(MemoryPlan.Estimate(c, inputs, 1, false, 1),
            Is.EqualTo(new MemoryEstimate(1, false, 1, 51136, 0, 51136, 38352, activations, reserve, 0)));
        // Stage 2 with offload, EP 4: Phi_d = 10544 + 560 = 11104; gradients 4 * 3196; optimizer on the host 16 * 3196.
        var x = MemoryPlan.Estimate(c, inputs, 2, true, 4);
        Assert.That(x, Is.EqualTo(new MemoryEstimate(2, true, 4, 44416, 0, 12784, 0, activations, reserve, 51136)));
        Assert.That(x.Total, Is.EqualTo(44416 + 12784 + activations + reserve));

        // bfloat16: bf16 copies 2 * Phi_d, activations 100 * (792 * 2 + 8064).
        var bf = Config("train.dtype=bfloat16");
        var b = MemoryPlan.Estimate(c, MemoryPlan.Inputs(bf, 4), 0, false, 2);
        Assert.That((b.ComputeWeights, b.Activations), Is.EqualTo((23328L, 964800L)));
    }

    [Test]
    public void RecommendsTheFittingChoiceWithLeastCommunication()
    {
        var choices = MemoryPlan.All(Config(), 4);
        // 5 (stage, offload) pairs (stage 0 has no offload) x EP 1, 2, 4; offload last, then stage, then EP.
        var keys = choices.Select(x => (x.OffloadOptimizer, x.ZeroStage, x.ExpertParallel)).ToList();
        Assert.That(keys, Is.EqualTo(keys.Order().ToList()));
        Assert.That(choices, Has.Count.EqualTo(15));
        // Totals above the 1 GiB reserve: stage 0 EP 4 1,300,864; stage 1 EP 1 1,263,824; stage 1 EP 2 1,254,864.
        // 1,075,000,000 bytes lets stage 1 EP 2 (1,074,996,688) fit but neither stage 0 nor stage 1 EP 1 (1,075,005,648).
        var pick = MemoryPlan.Recommend(choices, 1_075_000_000.0 / (1L << 30));
        Assert.That((pick!.ZeroStage, pick.OffloadOptimizer, pick.ExpertParallel), Is.EqualTo((1, false, 2)));
        Assert.That(MemoryPlan.Recommend(choices, 0.5), Is.Null);
    }

    [Test]
    public void CpuEstimateOfOneProcess()
    {
        // Phi = 10544 + 2240 = 12784; T = 800 / 2 = 400 tokens per micro-batch in one process.
        // fp32: params 4 Phi, grads 4 Phi, AdamW 8 Phi, no EMA; activations 400 * (792 * 4 + 8064) = 4,492,800.
        var fp32 = MemoryPlan.Host(Config(), 4);
        Assert.That(fp32, Is.EqualTo(new HostMemoryEstimate(4, 51136, 0, 51136, 102272, 0, 4_492_800, MemoryPlan.HostRuntimeBytes)));
        Assert.That(fp32.Total, Is.EqualTo(51136 + 51136 + 102272 + 4_492_800 + MemoryPlan.HostRuntimeBytes));
        // bf16 with EMA: bf16 copies 2 Phi, EMA 4 Phi; activations 400 * (792 * 2 + 8064) = 3,859,200.
        var bf16 = MemoryPlan.Host(Config("train.ema_decay=0.999"), 2);
        Assert.That((bf16.ComputeWeights, bf16.Ema, bf16.Activations), Is.EqualTo((25568L, 51136L, 3_859_200L)));
    }
}
