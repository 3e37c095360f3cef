using TorchSharp;
using TorchSharp.Modules;
using ZCode.Config;
using ZCode.Model.Moe;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>
/// Z-code M3 encoder-decoder: pre-LN Transformer, shared source/target embedding scaled by sqrt(d) and tied to
/// the output projection, sinusoidal or learned positions, MoE FFN every n-th layer in encoder and decoder.
/// The target-language tag is part of the source ids (the data side prepends it).
/// </summary>
public sealed class Seq2SeqTransformer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding embed_tokens;
    private readonly Embedding? embed_positions;
    private readonly ModuleList<EncoderLayer> encoder_layers;
    private readonly ModuleList<DecoderLayer> decoder_layers;
    private readonly LayerNorm encoder_norm, decoder_norm;
    private readonly Tensor? sinusoids;
    private readonly double embedScale;

    public ModelConfig Config { get; }
    public int PadId { get; }

    /// <summary>
    /// Compute dtype of matmuls, attention and experts (fp32 or bf16). Parameters (the optimizer's master weights)
    /// always stay fp32 and are cast where they are used, so gradients flow back into fp32; the residual stream,
    /// LayerNorm, the MoE router, the logits and the loss stay fp32.
    /// </summary>
    public ScalarType ComputeDtype
    {
        get => computeDtype;
        set
        {
            if (value is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
                throw new ArgumentException($"compute dtype must be a floating type, got {value}", nameof(value));
            computeDtype = value;
            foreach (var l in encoder_layers) l.ComputeDtype = value;
            foreach (var l in decoder_layers) l.ComputeDtype = value;
        }
    }

    private ScalarType computeDtype = ScalarType.Float32;

    /// <param name="cfg">Model settings.</param>
    /// <param name="padId">Padding token id.</param>
    /// <param name="expertGroup">Expert-parallel group: every MoE layer holds only this rank's E/P experts and
    /// exchanges tokens over the group (see <see cref="MoeLayer"/>); null (or a group of one) holds all experts.</param>
    public Seq2SeqTransformer(ModelConfig cfg, int padId = 0, ExpertParallelGroup? expertGroup = null) : base("zcode")
    {
        Config = cfg;
        ExpertGroup = expertGroup is { Size: > 1 } ? expertGroup : null;
        PadId = padId;
        embedScale = Math.Sqrt(cfg.DModel);
        embed_tokens = nn.Embedding(cfg.VocabSize, cfg.DModel, padding_idx: padId);
        using (no_grad())
        {
            nn.init.normal_(embed_tokens.weight!, 0, Math.Pow(cfg.DModel, -0.5));
            embed_tokens.weight![padId].zero_();
        }
        if (cfg.Positions == "learned")
            embed_positions = nn.Embedding(cfg.MaxPositions, cfg.DModel);
        else
            sinusoids = SinusoidalPositions.Table(cfg.MaxPositions, cfg.DModel);

        encoder_layers = new ModuleList<EncoderLayer>(Enumerable.Range(0, cfg.EncoderLayers)
            .Select(i => new EncoderLayer($"encoder_{i}", cfg, MoeLayout.IsMoeLayer(cfg.Moe, i), ExpertGroup)).ToArray());
        decoder_layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, cfg.DecoderLayers)
            .Select(i => new DecoderLayer($"decoder_{i}", cfg, MoeLayout.IsMoeLayer(cfg.Moe, i), ExpertGroup)).ToArray());
        encoder_norm = nn.LayerNorm(cfg.DModel);
        decoder_norm = nn.LayerNorm(cfg.DModel);
        RegisterComponents();
        // Every MoE layer's module is named "moe", so name-derived seeds would coincide: give each its own stream
        // (a run reseeds them from train.seed every step, see MoeSeeding).
        MoeSeeding.Apply(this, 0);
    }

    /// <summary>How every MoE layer runs its experts (<see cref="MoeExecutionPath.For"/> chooses it for the device the
    /// model runs on; the default is packed, or padded under expert parallelism).</summary>
    public MoeExecution MoeExecution
    {
        get => MoeLayers.Count > 0 ? MoeLayers[0].Execution : MoeExecution.Packed;
        set
        {
            foreach (var l in MoeLayers) l.Execution = value;
        }
    }

    /// <summary>The expert-parallel group the model was built for, or null when it holds every expert.</summary>
    public ExpertParallelGroup? ExpertGroup { get; }

    /// <summary>
    /// Expert parameters (the stacked w1/b1/w2/b2 of every MoE layer) with their state-dict names, in
    /// named_parameters order. Under expert parallelism they differ between the ranks of an expert group, so their
    /// gradients are reduced over the expert-data-parallel group only; every other parameter over all data-parallel ranks.
    /// </summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> ExpertParameters()
    {
        var experts = MoeLayers.SelectMany(l => l.ExpertParameters).Select(p => p.Parameter.Handle).ToHashSet();
        return named_parameters().Where(p => experts.Contains(p.parameter.Handle)).Select(p => (p.name, p.parameter)).ToList();
    }

    /// <summary>The device the parameters live on (where inputs must be).</summary>
    public Device Device => embed_tokens.weight!.device;

    /// <summary>All MoE layers, encoder first then decoder, in layer order (the order of expert statistics).</summary>
    public IReadOnlyList<MoeLayer> MoeLayers =>
        encoder_layers.Select(l => l.Moe).Concat(decoder_layers.Select(l => l.Moe)).OfType<MoeLayer>().ToList();

    /// <summary>
    /// Teacher-forced forward with the real (non-pad) token counts of src and tgtIn known on the host (the trainer
    /// built the batch): the MoE layers size their capacity from them instead of reading the masks back from the
    /// device, so a training step never waits for the GPU.
    /// </summary>
    public Tensor Forward(Tensor src, Tensor tgtIn, long srcTokens, long tgtTokens)
    {
        var encoderMoe = encoder_layers.Select(l => l.Moe).OfType<MoeLayer>().ToList();
        var decoderMoe = decoder_layers.Select(l => l.Moe).OfType<MoeLayer>().ToList();
        foreach (var m in encoderMoe) m.RealTokensHint = srcTokens;
        foreach (var m in decoderMoe) m.RealTokensHint = tgtTokens;
        try
        {
            return call(src, tgtIn);
        }
        finally
        {
            foreach (var m in encoderMoe.Concat(decoderMoe)) m.RealTokensHint = null;
        }
    }

    /// <summary>Teacher-forced forward: src [B, Ls], tgtIn [B, Lt] -> fp32 logits [B, Lt, V].</summary>
    public override Tensor forward(Tensor src, Tensor tgtIn)
    {
        var srcMask = src.ne(PadId);
        var memory = Encode(src, srcMask);
        return Decode(tgtIn, memory, srcMask);
    }

    /// <summary>Encoder output [B, Ls, d] in the compute dtype (the decoder's cross-attention input).</summary>
    public Tensor Encode(Tensor src, Tensor srcMask)
    {
        var x = Embed(src);
        foreach (var layer in encoder_layers)
            x = layer.call(x, srcMask);
        return LayerNormIn.Apply(encoder_norm, x, computeDtype);
    }

    /// <summary>Decoder logits [B, Lt, V] (fp32) for decoder input tgtIn given the encoder memory.</summary>
    public Tensor Decode(Tensor tgtIn, Tensor memory, Tensor srcMask) => Logits(DecoderHidden(tgtIn, memory, srcMask));

    /// <summary>
    /// Logits [B, V] of the last position only, recomputing the decoder over the whole prefix tgtIn [B, Lt]
    /// (decoding without a cache; the output projection is skipped for earlier positions).
    /// </summary>
    public Tensor DecodeLast(Tensor tgtIn, Tensor memory, Tensor srcMask)
    {
        var hidden = DecoderHidden(tgtIn, memory, srcMask);
        return Logits(hidden.narrow(1, hidden.shape[1] - 1, 1)).squeeze(1);
    }

    /// <summary>
    /// Starts incremental decoding of a batch: computes every decoder layer's cross-attention keys/values from the
    /// encoder memory [B, Ls, d] once. Dispose the cache when done (its tensors outlive per-step dispose scopes).
    /// </summary>
    public DecoderCache StartDecoding(Tensor memory, Tensor srcMask)
    {
        var layers = new List<DecoderLayerCache>();
        foreach (var layer in decoder_layers)
        {
            var (k, v) = layer.CrossKeysValues(memory);
            layers.Add(new DecoderLayerCache(k.DetachFromDisposeScope(), v.DetachFromDisposeScope()));
        }
        return new DecoderCache(layers, srcMask.alias().DetachFromDisposeScope());
    }

    /// <summary>
    /// One incremental decoder step: tokens [B] at position cache.Length -> logits [B, V] (fp32) of the next token.
    /// Equals <see cref="DecodeLast"/> on the full prefix (up to float rounding), at one position per step.
    /// </summary>
    public Tensor DecodeStep(Tensor tokens, DecoderCache cache)
    {
        var x = Embed(tokens.view(-1, 1), cache.Length);
        for (int i = 0; i < decoder_layers.Count; i++)
            x = decoder_layers[i].Step(x, cache.Layers[i], cache.SourceMask);
        cache.Length++;
        return Logits(x).squeeze(1);
    }

    private Tensor DecoderHidden(Tensor tgtIn, Tensor memory, Tensor srcMask)
    {
        var tgtMask = tgtIn.ne(PadId);
        var x = Embed(tgtIn);
        foreach (var layer in decoder_layers)
            x = layer.call(x, tgtMask, memory, srcMask);
        return x;
    }

    private Tensor Logits(Tensor hidden)
    {
        using var _ = ZCode.Runtime.StepProfile.Measure("output projection");
        var x = LayerNormIn.Apply(decoder_norm, hidden, computeDtype);
        var w = embed_tokens.weight!;
        var logits = nn.functional.linear(x, w.dtype == x.dtype ? w : w.to_type(x.dtype));
        return logits.dtype == ScalarType.Float32 ? logits : logits.to_type(ScalarType.Float32);
    }

    /// <summary>Scaled token embeddings plus positions offset..offset+L-1, for ids [B, L]: the fp32 residual stream.</summary>
    private Tensor Embed(Tensor ids, int offset = 0)
    {
        long len = ids.shape[1];
        if (offset + len > Config.MaxPositions)
            throw new ArgumentException($"sequence length {offset + len} exceeds model.max_positions {Config.MaxPositions}");
        var x = embed_tokens.call(ids) * embedScale;
        var pos = embed_positions is not null
            ? embed_positions.call(arange(offset, offset + len, dtype: ScalarType.Int64, device: ids.device))
            : sinusoids!.narrow(0, offset, len).to(ids.device);
        x = x + pos.unsqueeze(0);
        return CounterDropout.Apply(x, Config.Dropout, training);
    }

    /// <summary>Sum over MoE layers of the unweighted load-balancing losses of the last forward (DeepSpeed sums).</summary>
    public Tensor? AuxLoss() => SumOf(MoeLayers.Select(m => m.AuxLoss));

    /// <summary>Sum over MoE layers of the router z-losses of the last forward.</summary>
    public Tensor? ZLoss() => SumOf(MoeLayers.Select(m => m.ZLoss));

    private static Tensor? SumOf(IEnumerable<Tensor?> terms)
    {
        Tensor? total = null;
        foreach (var t in terms)
            if (t is not null)
                total = total is null ? t : total + t;
        return total;
    }
}
