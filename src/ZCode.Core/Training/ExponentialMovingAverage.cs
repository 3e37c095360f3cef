using ZCode.Model;
using static TorchSharp.torch;

namespace ZCode.Training;

/// <summary>
/// An fp32 exponential moving average of a model's trainable parameters (Marian's exponential smoothing, Polyak
/// averaging): after every optimizer step ema = decay * ema + (1 - decay) * weights. Validation runs on it, checkpoints
/// save it beside the weights (<c>ema-*.safetensors</c>, same names), and eval/translate use it when present.
/// </summary>
public sealed class ExponentialMovingAverage : IDisposable
{
    private readonly List<(string Name, Tensor Parameter, Tensor Average)> pairs;
    private readonly double decay;

    /// <summary>Starts at the model's current weights.</summary>
    public ExponentialMovingAverage(Seq2SeqTransformer model, double decay)
    {
        if (!(decay > 0 && decay < 1)) throw new ArgumentOutOfRangeException(nameof(decay), decay, "must be in (0, 1)");
        this.decay = decay;
        using var _ = no_grad();
        pairs = model.named_parameters().Where(p => p.parameter.requires_grad)
            .Select(p => (p.name, (Tensor)p.parameter, p.parameter.detach().to(ScalarType.Float32).clone().DetachFromDisposeScope()))
            .ToList();
    }

    /// <summary>The averaged weights by parameter name.</summary>
    public IReadOnlyDictionary<string, Tensor> Weights => pairs.ToDictionary(p => p.Name, p => p.Average, StringComparer.Ordinal);

    /// <summary>Moves the average towards the current weights.</summary>
    public void Update()
    {
        using var _ = no_grad();
        foreach (var (_, p, avg) in pairs)
            avg.mul_(decay).add_(p, alpha: 1 - decay);
    }

    /// <summary>Runs <paramref name="action"/> with the averaged weights in the model, then puts the trained weights back
    /// exactly (a copy is kept meanwhile).</summary>
    public T WithAveragedWeights<T>(Func<T> action)
    {
        using var scope = NewDisposeScope();
        var trained = new List<Tensor>(pairs.Count);
        using (no_grad())
            foreach (var (_, p, avg) in pairs)
            {
                trained.Add(p.detach().clone());
                p.detach().copy_(avg);
            }
        try
        {
            return action();
        }
        finally
        {
            using (no_grad())
                for (int i = 0; i < pairs.Count; i++)
                    pairs[i].Parameter.detach().copy_(trained[i]);
        }
    }

    /// <summary>Takes the model's current weights as the average (a resumed run loads the saved average into the model
    /// first, then calls this, then loads the trained weights).</summary>
    public void CopyFromModel()
    {
        using var _ = no_grad();
        foreach (var (_, p, avg) in pairs)
            avg.copy_(p);
    }

    public void Dispose()
    {
        foreach (var (_, _, avg) in pairs) avg.Dispose();
    }
}
