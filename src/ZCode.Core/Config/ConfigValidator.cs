namespace ZCode.Config;

/// <summary>
/// The one place that decides whether a config can run: range checks for every value of <see cref="ZCodeConfig"/>
/// and the rules that tie values together (here, run on every load), plus the rules against the files, the machine and
/// the launch that <see cref="ValidateRun"/> adds.
/// </summary>
public static partial class ConfigValidator
{
    public static readonly string[] Positions = ["sinusoidal", "learned"];
    public static readonly string[] TokenPriorities = ["order", "random", "score"];
    public static readonly string[] NoisyGates = ["none", "jitter", "rsample"];
    public static readonly string[] Schedules = ["inverse_sqrt", "linear", "constant"];
    /// <summary>auto, fp32 and bf16 are the documented names; float32 and bfloat16 are accepted aliases.</summary>
    public static readonly string[] Dtypes = ["auto", "fp32", "bf16", "float32", "bfloat16"];
    public static readonly string[] Backends = ["auto", "local", "mpi", "nccl"];
    public static readonly string[] Tokenizers = ["13a", "intl", "zh", "char", "none"];
    /// <summary>What train.best_metric can name: the token-weighted validation NLL (lower is better), or the mean BLEU or
    /// chrF over the validation directions (higher is better).</summary>
    public static readonly string[] BestMetrics = ["valid_loss", "bleu", "chrf"];

    /// <summary>Validates a config that did not come from a file (built in code, read from a checkpoint); errors name <paramref name="sourceName"/>.</summary>
    public static void Validate(ZCodeConfig config, string sourceName = "config")
        => Validate(config, new SourceMap(new ConfigSource(sourceName, HasPositions: false)));

    internal static ValueChecker Validate(ZCodeConfig config, SourceMap map)
    {
        var check = new ValueChecker(map);
        Model(config.Model, check);
        Moe(config.Model, check);
        Data(config.Data, check);
        Tasks(config.Tasks, check);
        Train(config.Train, check);
        Parallel(config.Parallel, config.Model.Moe, check);
        Eval(config.Eval, check);
        Lengths(config, check);
        return check;
    }

    private static void Model(ModelConfig m, ValueChecker check)
    {
        check.AtLeast("model.vocab_size", m.VocabSize, 1);
        check.AtLeast("model.d_model", m.DModel, 1);
        check.AtLeast("model.ffn_dim", m.FfnDim, 1);
        check.AtLeast("model.heads", m.Heads, 1);
        check.Require(m.DModel % m.Heads == 0,
            $"model.d_model: must be divisible by model.heads ({m.Heads}), got {m.DModel}", "model.d_model", "model.heads");
        check.AtLeast("model.encoder_layers", m.EncoderLayers, 1);
        check.AtLeast("model.decoder_layers", m.DecoderLayers, 1);
        check.Fraction("model.dropout", m.Dropout);
        check.Fraction("model.attention_dropout", m.AttentionDropout);
        check.OneOf("model.positions", m.Positions, Positions);
        check.AtLeast("model.max_positions", m.MaxPositions, 1);
    }

    private static void Moe(ModelConfig m, ValueChecker check)
    {
        var moe = m.Moe;
        var enabled = moe.EveryNLayers > 0;
        var deepest = Math.Max(m.EncoderLayers, m.DecoderLayers);
        check.AtLeast("model.moe.every_n_layers", moe.EveryNLayers, 0);
        // every_n_layers beyond the depth would silently give a dense model; 0 is the explicit way to ask for one.
        check.Require(moe.EveryNLayers <= deepest,
            $"model.moe.every_n_layers: must be at most the number of layers ({deepest}), or 0 for a dense model; got {moe.EveryNLayers}",
            "model.moe.every_n_layers");
        check.AtLeast("model.moe.experts", moe.Experts, 0);
        check.Require(!enabled || moe.Experts >= 1,
            $"model.moe.experts: must be at least 1 (or set model.moe.every_n_layers: 0 for a dense model), got {moe.Experts}",
            "model.moe.experts");
        check.OneOf("model.moe.top_k", moe.TopK, 1, 2);
        check.Require(!enabled || moe.TopK <= moe.Experts,
            $"model.moe.top_k: must be at most model.moe.experts ({moe.Experts}), got {moe.TopK}", "model.moe.top_k", "model.moe.experts");
        check.AtLeast("model.moe.capacity_factor", moe.CapacityFactor, 0.0);
        check.AtLeast("model.moe.eval_capacity_factor", moe.EvalCapacityFactor, 0.0);
        check.AtLeast("model.moe.min_capacity", moe.MinCapacity, 0);
        check.OneOf("model.moe.token_priority", moe.TokenPriority, TokenPriorities);
        check.OneOf("model.moe.noisy_gate", moe.NoisyGate, NoisyGates);
        check.Fraction("model.moe.jitter", moe.Jitter);
        // The epsilon only means something with jitter noise, and jitter noise needs an epsilon (DeepSpeed uses 0.01).
        check.Require(moe.NoisyGate != "jitter" || moe.Jitter > 0,
            $"model.moe.jitter: must be greater than 0 with model.moe.noisy_gate: jitter (e.g. 0.01), got {moe.Jitter}",
            "model.moe.jitter", "model.moe.noisy_gate");
        check.Require(moe.Jitter == 0 || moe.NoisyGate == "jitter",
            $"model.moe.jitter: is only used with model.moe.noisy_gate: jitter (now '{moe.NoisyGate}'); set noisy_gate: jitter or jitter: 0",
            "model.moe.jitter", "model.moe.noisy_gate");
        check.AtLeast("model.moe.aux_loss_weight", moe.AuxLossWeight, 0.0);
        check.AtLeast("model.moe.z_loss_weight", moe.ZLossWeight, 0.0);
        check.Fraction("model.moe.expert_dropout", moe.ExpertDropout);
    }

    private static void Data(DataConfig d, ValueChecker check)
    {
        check.AnyValue("data.spm_model"); // required, but only by the commands that read it: see RequiredPath
        var seen = new HashSet<string>();
        for (var i = 0; i < d.Languages.Count; i++)
        {
            var path = $"data.languages[{i}]";
            check.NotEmpty(path, d.Languages[i]);
            check.Require(seen.Add(d.Languages[i]), $"{path}: language '{d.Languages[i]}' is listed twice", path);
        }
        Corpora("data.parallel", d.Parallel, check);
        for (var i = 0; i < d.Monolingual.Count; i++)
        {
            check.NotEmpty($"data.monolingual[{i}].lang", d.Monolingual[i].Lang);
            check.NotEmpty($"data.monolingual[{i}].path", d.Monolingual[i].Path);
        }
        Corpora("data.valid", d.Valid, check);
        Corpora("data.test", d.Test, check);
        check.AtLeast("data.max_len", d.MaxLen, 3); // a language tag, one token and EOS
        check.Positive("data.temperature", d.Temperature);
        check.AnyValue("data.shard_dir");
        check.AnyValue("data.both_directions");
    }

    private static void Corpora(string listPath, List<ParallelCorpusConfig> corpora, ValueChecker check)
    {
        for (var i = 0; i < corpora.Count; i++)
        {
            var path = $"{listPath}[{i}]";
            var c = corpora[i];
            check.NotEmpty($"{path}.src", c.Src);
            check.NotEmpty($"{path}.tgt", c.Tgt);
            check.NotEmpty($"{path}.src_path", c.SrcPath);
            check.NotEmpty($"{path}.tgt_path", c.TgtPath);
            check.Require(c.Src != c.Tgt, $"{path}.tgt: must differ from {path}.src ('{c.Src}')", $"{path}.tgt", path);
        }
    }

    private static void Tasks(TasksConfig t, ValueChecker check)
    {
        check.AtLeast("tasks.mt.weight", t.Mt.Weight, 0.0);
        check.AtLeast("tasks.dae.weight", t.Dae.Weight, 0.0);
        check.Require(t.Mt.Weight + t.Dae.Weight > 0,
            "tasks: at least one of tasks.mt.weight and tasks.dae.weight must be greater than 0", "tasks.mt.weight", "tasks.dae.weight");
        check.Fraction("tasks.dae.mask_ratio", t.Dae.MaskRatio);
        check.Positive("tasks.dae.poisson_lambda", t.Dae.PoissonLambda);
        check.AnyValue("tasks.dae.permute_sentences");
    }

    private static void Train(TrainConfig t, ValueChecker check)
    {
        check.AtLeast("train.seed", t.Seed, 0);
        check.AtLeast("train.max_steps", t.MaxSteps, 1);
        check.AtLeast("train.tokens_per_batch", t.TokensPerBatch, 1);
        check.Positive("train.lr", t.Lr);
        check.AtLeast("train.warmup_steps", t.WarmupSteps, 0);
        check.OneOf("train.schedule", t.Schedule, Schedules);
        // inverse_sqrt decays as sqrt(warmup / step): with no warmup the rate would be 0 throughout.
        check.Require(t.Schedule != "inverse_sqrt" || t.WarmupSteps >= 1,
            $"train.warmup_steps: must be at least 1 with train.schedule inverse_sqrt, got {t.WarmupSteps}", "train.warmup_steps", "train.schedule");
        check.Fraction("train.adam_beta1", t.AdamBeta1);
        check.Fraction("train.adam_beta2", t.AdamBeta2);
        check.Positive("train.adam_eps", t.AdamEps);
        check.AtLeast("train.weight_decay", t.WeightDecay, 0.0);
        check.AtLeast("train.clip_norm", t.ClipNorm, 0.0);
        check.Fraction("train.label_smoothing", t.LabelSmoothing);
        check.OneOf("train.dtype", t.Dtype, Dtypes);
        check.AnyValue("train.device");
        check.Require(ZCode.Runtime.ComputeDevice.IsValidSetting(t.Device),
            $"train.device: must be auto, cpu, cuda or cuda:N (N a device index); got '{t.Device}'", "train.device");
        check.AtLeast("train.grad_accumulation", t.GradAccumulation, 1);
        check.AtLeast("train.log_interval", t.LogInterval, 1);
        check.AtLeast("train.eval_interval", t.EvalInterval, 0);
        check.OneOf("train.best_metric", t.BestMetric, BestMetrics);
        check.AtLeast("train.patience", t.Patience, 0);
        check.Require(t.Patience == 0 || t.EvalInterval > 0,
            $"train.patience: early stopping counts validations, so it needs train.eval_interval > 0; got patience {t.Patience} " +
            "with eval_interval 0", "train.patience", "train.eval_interval");
        check.Fraction("train.ema_decay", t.EmaDecay);
        check.AtLeast("train.save_interval", t.SaveInterval, 0);
        check.AtLeast("train.keep_last", t.KeepLast, 1);
        check.AtLeast("train.keep_every", t.KeepEvery, 0);
        check.AtLeast("train.keep_best", t.KeepBest, 0);
        check.Require(t.KeepBest == 0 || t.EvalInterval > 0,
            "train.keep_best: keeping the best checkpoints needs validations (train.eval_interval > 0)", "train.keep_best", "train.eval_interval");
        check.AtLeast("train.threads", t.Threads, 0);
    }

    private static void Parallel(ParallelConfig p, MoeConfig moe, ValueChecker check)
    {
        check.OneOf("parallel.backend", p.Backend, Backends);
        check.AtLeast("parallel.expert_parallel", p.ExpertParallel, 1);
        // Each expert-parallel rank owns experts / expert_parallel whole experts.
        check.Require(moe.EveryNLayers == 0 || moe.Experts % p.ExpertParallel == 0,
            $"parallel.expert_parallel: must divide model.moe.experts ({moe.Experts}), got {p.ExpertParallel}",
            "parallel.expert_parallel", "model.moe.experts");
        check.OneOf("parallel.zero_stage", p.ZeroStage, 0, 1, 2);
        check.AnyValue("parallel.offload_optimizer");
        // ZeRO-Offload moves the sharded optimizer state; stage 0 keeps one unsharded AdamW per rank.
        check.Require(!p.OffloadOptimizer || p.ZeroStage > 0,
            "parallel.offload_optimizer: needs parallel.zero_stage 1 or 2 (the offloaded state is the ZeRO shard)",
            "parallel.offload_optimizer", "parallel.zero_stage");
        check.AtLeast("parallel.timeout_s", p.TimeoutS, 1);
    }

    private static void Eval(EvalConfig e, ValueChecker check)
    {
        check.AtLeast("eval.beam", e.Beam, 1);
        check.AtLeast("eval.length_penalty", e.LengthPenalty, 0.0);
        check.AtLeast("eval.max_len_a", e.MaxLenA, 0.0);
        check.AtLeast("eval.max_len_b", e.MaxLenB, 0);
        check.AtLeast("eval.valid_sentences", e.ValidSentences, 0);
        check.AtLeast("eval.valid_beam", e.ValidBeam, 1);
        check.Require(e.MaxLenA > 0 || e.MaxLenB >= 1,
            "eval.max_len_b: must be at least 1 when eval.max_len_a is 0 (output length = max_len_a * source length + max_len_b)",
            "eval.max_len_b", "eval.max_len_a");
        check.OneOf("eval.tokenize", e.Tokenize, Tokenizers);
    }

    /// <summary>Rules between data lengths and the model/batch sizes that must hold them.</summary>
    private static void Lengths(ZCodeConfig c, ValueChecker check)
    {
        check.Require(c.Model.MaxPositions >= c.Data.MaxLen,
            $"model.max_positions: must be at least data.max_len ({c.Data.MaxLen}), got {c.Model.MaxPositions}",
            "model.max_positions", "data.max_len");
        check.Require(c.Train.TokensPerBatch >= c.Data.MaxLen,
            $"train.tokens_per_batch: must be at least data.max_len ({c.Data.MaxLen}) so the longest sentence fits a batch, got {c.Train.TokensPerBatch}",
            "train.tokens_per_batch", "data.max_len");
    }
}
