using ZCode.Config;

namespace ZCode.Tests.Config;

/// <summary>Edit distance, "did you mean" and snake_case key names.</summary>
[TestFixture]
public class SuggestTests
{
    [TestCase("", "", 0)]
    [TestCase("abc", "", 3)]
    [TestCase("kitten", "sitting", 3)]
    [TestCase("expertz", "experts", 1)]
    [TestCase("top_k", "topk", 1)]
    [TestCase("modle", "model", 1)]
    [TestCase("ab", "ba", 1)]
    [TestCase("abc", "ca", 3)]
    public void EditDistance(string a, string b, int expected)
    {
        Assert.That(Suggest.EditDistance(a, b), Is.EqualTo(expected));
        Assert.That(Suggest.EditDistance(b, a), Is.EqualTo(expected));
    }

    [TestCase("expertz", "experts")]
    [TestCase("dModel", "d_model")]
    [TestCase("capacity-factor", "capacity_factor")]
    [TestCase("topk", "top_k")]
    [TestCase("expretss", "experts")]
    [TestCase("banana", null)]
    [TestCase("x", null)]
    public void Closest(string word, string? expected)
    {
        string[] keys = ["experts", "d_model", "capacity_factor", "top_k", "every_n_layers"];
        Assert.That(Suggest.Closest(word, keys), Is.EqualTo(expected));
    }

    [TestCase("CapacityFactor", "capacity_factor")]
    [TestCase("EveryNLayers", "every_n_layers")]
    [TestCase("DModel", "d_model")]
    [TestCase("MaxLenA", "max_len_a")]
    [TestCase("AdamBeta1", "adam_beta1")]
    [TestCase("ZLossWeight", "z_loss_weight")]
    [TestCase("TopK", "top_k")]
    public void SnakeCase(string property, string key) => Assert.That(ConfigKeys.ToSnakeCase(property), Is.EqualTo(key));

    // Key names that scripts and docs rely on (README, "Configuration").
    [TestCase("model.vocab_size"), TestCase("model.d_model"), TestCase("model.ffn_dim"), TestCase("model.heads")]
    [TestCase("model.encoder_layers"), TestCase("model.decoder_layers"), TestCase("model.dropout")]
    [TestCase("model.moe.experts"), TestCase("model.moe.every_n_layers"), TestCase("model.moe.top_k")]
    [TestCase("model.moe.capacity_factor"), TestCase("model.moe.eval_capacity_factor"), TestCase("model.moe.min_capacity")]
    [TestCase("model.moe.token_priority"), TestCase("model.moe.aux_loss_weight"), TestCase("train.seed")]
    [TestCase("train.max_steps"), TestCase("train.tokens_per_batch"), TestCase("train.lr"), TestCase("train.warmup_steps")]
    [TestCase("train.log_interval"), TestCase("train.save_interval"), TestCase("train.keep_last")]
    [TestCase("parallel.backend"), TestCase("parallel.expert_parallel"), TestCase("parallel.zero_stage")]
    [TestCase("parallel.offload_optimizer")]
    public void DesignKeyNamesExist(string dotted)
    {
        var type = typeof(ZCodeConfig);
        foreach (var segment in dotted.Split('.'))
        {
            var key = ConfigKeys.Find(type, segment);
            Assert.That(key, Is.Not.Null, $"{dotted}: no '{segment}' in {type.Name}");
            type = key!.Property.PropertyType;
        }
    }
}
