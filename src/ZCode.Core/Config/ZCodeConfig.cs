using YamlDotNet.Serialization;

namespace ZCode.Config;

// The typed configuration schema. YAML keys are the snake_case forms of the property names
// (YamlDotNet UnderscoredNamingConvention): model.moe.capacity_factor <-> Model.Moe.CapacityFactor.
// Defaults here are the tiny CPU model (configs/m3-tiny.yaml), except the data files: a default path would resolve
// against whatever directory the user's config is in, so data.spm_model and data.shard_dir have none (m3-tiny sets them).

/// <summary>The whole run configuration: model, data, tasks, training, parallel layout and evaluation.</summary>
public sealed class ZCodeConfig
{
    public ModelConfig Model { get; set; } = new();
    public DataConfig Data { get; set; } = new();
    public TasksConfig Tasks { get; set; } = new();
    public TrainConfig Train { get; set; } = new();
    public ParallelConfig Parallel { get; set; } = new();
    public EvalConfig Eval { get; set; } = new();

    /// <summary>
    /// Directory that relative paths in this config resolve against: the config file's directory (set by
    /// <see cref="ConfigLoader"/>). Not part of the YAML: it describes where the config came from, not the run.
    /// </summary>
    [YamlIgnore]
    public string BaseDirectory { get; set; } = Directory.GetCurrentDirectory();

    /// <summary>Resolves a path written in the config (absolute, or relative to <see cref="BaseDirectory"/>).</summary>
    public string ResolvePath(string path) => Path.GetFullPath(path, BaseDirectory);

    /// <summary>Where each value was written (file line:column, or the --set override), so that validation after
    /// loading still points at it; a config built in code has no locations.</summary>
    [YamlIgnore]
    internal SourceMap Sources { get; set; } = new(new ConfigSource("config", HasPositions: false));

    /// <summary>Replaces the model section with one from <paramref name="source"/> (e.g. "--init-from CKPT"), which
    /// errors about model keys then name instead of lines of the file.</summary>
    public void ReplaceModel(ModelConfig model, string source)
    {
        Model = model;
        Sources.Replace("model", new ConfigSource(source, HasPositions: false));
    }
}

/// <summary>Encoder-decoder Transformer shape; FFN sublayers become MoE layers per <see cref="MoeConfig"/>.</summary>
public sealed class ModelConfig
{
    public int VocabSize { get; set; } = 8000;
    public int DModel { get; set; } = 128;
    public int FfnDim { get; set; } = 512;
    public int Heads { get; set; } = 4;
    public int EncoderLayers { get; set; } = 2;
    public int DecoderLayers { get; set; } = 2;
    public double Dropout { get; set; } = 0.1;
    public double AttentionDropout { get; set; } = 0.0;
    /// <summary>sinusoidal | learned</summary>
    public string Positions { get; set; } = "sinusoidal";
    public int MaxPositions { get; set; } = 256;
    public MoeConfig Moe { get; set; } = new();
}

/// <summary>Mixture-of-Experts layer settings (README, "Configuration").</summary>
public sealed class MoeConfig
{
    public int Experts { get; set; } = 4;
    /// <summary>Every n-th FFN (1-based: layers n, 2n, ...) is an MoE layer; 0 disables MoE.</summary>
    public int EveryNLayers { get; set; } = 2;
    public int TopK { get; set; } = 1;
    public double CapacityFactor { get; set; } = 1.0;
    public double EvalCapacityFactor { get; set; } = 2.0;
    public int MinCapacity { get; set; } = 4;
    /// <summary>order | random (Random Token Selection) | score</summary>
    public string TokenPriority { get; set; } = "random";
    /// <summary>Router noise in training: none | jitter (multiplicative input noise, epsilon <see cref="Jitter"/>) |
    /// rsample (Gumbel noise on the logits for expert selection), as DeepSpeed's noisy_gate_policy.</summary>
    public string NoisyGate { get; set; } = "none";
    /// <summary>Multiplicative router-input jitter epsilon for noisy_gate: jitter (train only).</summary>
    public double Jitter { get; set; } = 0.0;
    public double AuxLossWeight { get; set; } = 0.01;
    public double ZLossWeight { get; set; } = 0.0;
    public double ExpertDropout { get; set; } = 0.0;
}

/// <summary>Vocabulary, languages, corpora and sampling.</summary>
public sealed class DataConfig
{
    /// <summary>SentencePiece model; relative paths resolve against the config file's directory. No default.</summary>
    public string SpmModel { get; set; } = "";
    public List<string> Languages { get; set; } = new();
    /// <summary>Parallel corpora, one entry per direction or pair.</summary>
    public List<ParallelCorpusConfig> Parallel { get; set; } = new();
    /// <summary>Monolingual corpora for DAE.</summary>
    public List<MonolingualCorpusConfig> Monolingual { get; set; } = new();
    /// <summary>Held-out parallel data for validation/eval.</summary>
    public List<ParallelCorpusConfig> Valid { get; set; } = new();
    /// <summary>Held-out parallel data for <c>zcode eval --split test</c>: prepared into shards like valid, never trained on.</summary>
    public List<ParallelCorpusConfig> Test { get; set; } = new();
    public int MaxLen { get; set; } = 128;
    public double Temperature { get; set; } = 5.0;
    /// <summary>Output folder of `zcode data prepare`, relative like <see cref="SpmModel"/>. No default.</summary>
    public string ShardDir { get; set; } = "";
    /// <summary>Also train the reverse direction of every parallel corpus.</summary>
    public bool BothDirections { get; set; } = true;
}

/// <summary>An aligned pair of text files: line i of src translates line i of tgt.</summary>
public sealed class ParallelCorpusConfig
{
    public string Src { get; set; } = "";
    public string Tgt { get; set; } = "";
    public string SrcPath { get; set; } = "";
    public string TgtPath { get; set; } = "";
}

/// <summary>One monolingual text file.</summary>
public sealed class MonolingualCorpusConfig
{
    public string Lang { get; set; } = "";
    public string Path { get; set; } = "";
}

/// <summary>Task mixture: translation and denoising.</summary>
public sealed class TasksConfig
{
    public MtTaskConfig Mt { get; set; } = new();
    public DaeTaskConfig Dae { get; set; } = new();
}

public sealed class MtTaskConfig
{
    public double Weight { get; set; } = 1.0;
}

/// <summary>mBART-style text infilling.</summary>
public sealed class DaeTaskConfig
{
    public double Weight { get; set; } = 0.0;
    public double MaskRatio { get; set; } = 0.35;
    public double PoissonLambda { get; set; } = 3.5;
    public bool PermuteSentences { get; set; } = false;
}

/// <summary>Optimisation, schedule, batching and bookkeeping intervals.</summary>
public sealed class TrainConfig
{
    public long Seed { get; set; } = 1;
    public int MaxSteps { get; set; } = 1000;
    public int TokensPerBatch { get; set; } = 2048;
    public double Lr { get; set; } = 5e-3;
    public int WarmupSteps { get; set; } = 40;
    /// <summary>inverse_sqrt | linear | constant</summary>
    public string Schedule { get; set; } = "inverse_sqrt";
    public double AdamBeta1 { get; set; } = 0.9;
    public double AdamBeta2 { get; set; } = 0.98;
    public double AdamEps { get; set; } = 1e-8;
    public double WeightDecay { get; set; } = 0.01;
    public double ClipNorm { get; set; } = 1.0;
    public double LabelSmoothing { get; set; } = 0.1;
    /// <summary>auto | fp32 | bf16 (compute dtype; master weights, optimizer state, router and loss stay fp32);
    /// auto is bf16 where the device computes it fast, else fp32; float32 | bfloat16 are accepted aliases.</summary>
    public string Dtype { get; set; } = "auto";
    /// <summary>auto | cpu | cuda | cuda:N (auto: CUDA when LibTorch reports it, else CPU).</summary>
    public string Device { get; set; } = "auto";
    public int GradAccumulation { get; set; } = 1;
    public int LogInterval { get; set; } = 2;
    /// <summary>Steps between validations on data.valid (and one at the last step); 0 = none.</summary>
    public int EvalInterval { get; set; } = 0;
    /// <summary>valid_loss | bleu | chrf: what decides checkpoints/best and early stopping.</summary>
    public string BestMetric { get; set; } = "valid_loss";
    /// <summary>Validations without improvement of best_metric after which training stops; 0 = never.</summary>
    public int Patience { get; set; } = 0;
    /// <summary>Decay of an fp32 exponential moving average of the weights, updated every step; 0 = none.</summary>
    public double EmaDecay { get; set; } = 0.0;
    public int SaveInterval { get; set; } = 100;
    public int KeepLast { get; set; } = 3;
    /// <summary>Also keep every checkpoint whose step is a multiple of this (0 = none), beyond keep_last.</summary>
    public int KeepEvery { get; set; } = 0;
    /// <summary>Also keep the N step checkpoints with the best validation (0 = none), beyond keep_last.</summary>
    public int KeepBest { get; set; } = 0;
    /// <summary>Intra-op CPU threads; 0 = all cores.</summary>
    public int Threads { get; set; } = 0;
}

/// <summary>Parallel layout: data x expert parallelism, ZeRO stage, backend (docs/ARCHITECTURE.md §5, equivalence rule).</summary>
public sealed class ParallelConfig
{
    /// <summary>auto | local | mpi | nccl</summary>
    public string Backend { get; set; } = "auto";
    public int ExpertParallel { get; set; } = 1;
    public int ZeroStage { get; set; } = 0;
    public bool OffloadOptimizer { get; set; } = false;
    /// <summary>Seconds a collective may wait for the other ranks before the run fails naming this rank.</summary>
    public int TimeoutS { get; set; } = 300;
}

/// <summary>Decoding and scoring.</summary>
public sealed class EvalConfig
{
    public int Beam { get; set; } = 4;
    public double LengthPenalty { get; set; } = 1.0;
    public double MaxLenA { get; set; } = 1.2;
    public int MaxLenB { get; set; } = 10;
    /// <summary>13a | intl | zh | char | none</summary>
    public string Tokenize { get; set; } = "13a";
    /// <summary>Sentences of each validation direction that periodic validation translates for BLEU/chrF (0 = all).</summary>
    public int ValidSentences { get; set; } = 200;
    /// <summary>Beam of periodic validation's translations.</summary>
    public int ValidBeam { get; set; } = 4;
}
