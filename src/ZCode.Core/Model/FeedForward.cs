using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ZCode.Model;

/// <summary>Dense position-wise FFN: Linear(d, ffn) -> ReLU -> dropout -> Linear(ffn, d).</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2;
    private readonly double activationDropout;

    public FeedForward(string name, int dModel, int ffnDim, double activationDropout) : base(name)
    {
        fc1 = nn.Linear(dModel, ffnDim);
        fc2 = nn.Linear(ffnDim, dModel);
        this.activationDropout = activationDropout;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var _ = ZCode.Runtime.StepProfile.Measure("ffn");
        var h = nn.functional.relu(Projection.Apply(fc1, x));
        if (training && activationDropout > 0)
            h = CounterDropout.Apply(h, activationDropout, training);
        return Projection.Apply(fc2, h);
    }
}
