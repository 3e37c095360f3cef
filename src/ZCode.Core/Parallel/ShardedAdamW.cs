using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>
/// AdamW over this rank's slice of a <see cref="FlatPartition"/> (ZeRO stage 1/2): fp32 master weights, exp_avg and
/// exp_avg_sq for S elements only. The update is TorchSharp's AdamW op for op (decoupled decay p *= 1 - lr*wd, then
/// Adam with bias correction, denominator sqrt(v)/sqrt(1-b2^t) + eps), so stage 0 and ZeRO agree to rounding.
/// With <c>offload</c> (ZeRO-Offload) master weights and moments live in host memory: the gradient slice is copied
/// to the host, updated there and the new weights copied back; on a CPU-only machine host and device coincide and
/// the same copies still run.
/// </summary>
public sealed class ShardedAdamW : IDisposable
{
    private readonly FlatPartition part;
    private readonly double beta1, beta2, eps, weightDecay;
    private readonly Tensor? hostGrad;
    private readonly Tensor? deviceParams;

    public ShardedAdamW(FlatPartition partition, Device device, bool offload, double beta1, double beta2, double eps, double weightDecay)
    {
        part = partition;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        Offload = offload;
        var home = offload ? CPU : device;
        long s = partition.ShardSize;
        Grad = zeros(new[] { s }, ScalarType.Float32, device).DetachFromDisposeScope();
        Master = zeros(new[] { s }, ScalarType.Float32, home).DetachFromDisposeScope();
        ExpAvg = zeros(new[] { s }, ScalarType.Float32, home).DetachFromDisposeScope();
        ExpAvgSq = zeros(new[] { s }, ScalarType.Float32, home).DetachFromDisposeScope();
        if (offload)
        {
            hostGrad = zeros(new[] { s }, ScalarType.Float32, CPU).DetachFromDisposeScope();
            deviceParams = zeros(new[] { s }, ScalarType.Float32, device).DetachFromDisposeScope();
        }
        LoadMasterFromParameters();
    }

    public FlatPartition Partition => part;
    public bool Offload { get; }
    /// <summary>This rank's slice of the reduced gradient [S], on the parameters' device.</summary>
    public Tensor Grad { get; }
    /// <summary>fp32 master weights of this rank's slice [S] (host memory when offloaded).</summary>
    public Tensor Master { get; }
    public Tensor ExpAvg { get; }
    public Tensor ExpAvgSq { get; }
    /// <summary>Optimizer steps taken (AdamW's per-parameter step; the same for every element).</summary>
    public long Step { get; set; }

    /// <summary>Bytes of optimizer state this rank holds: moments, plus the separate master copy when offloaded
    /// (without offload the master slice stands in for the parameters' own fp32 values).</summary>
    public long StateBytes => (ExpAvg.numel() + ExpAvgSq.numel() + (Offload ? Master.numel() : 0)) * 4;

    /// <summary>Copies the parameters' current values of this rank's slice into the master weights.</summary>
    public void LoadMasterFromParameters()
    {
        if (Offload)
        {
            part.GatherParams(part.ShardStart, deviceParams!);
            Master.copy_(deviceParams!);
        }
        else
            part.GatherParams(part.ShardStart, Master);
    }

    /// <summary>One AdamW step on the slice from <see cref="Grad"/>; returns the updated slice on the parameters' device
    /// (to be all-gathered).</summary>
    public Tensor Update(double lr)
    {
        using var scope = NewDisposeScope();
        Step++;
        var g = Grad;
        if (Offload)
        {
            hostGrad!.copy_(Grad);
            g = hostGrad;
        }
        double bc1 = 1 - Math.Pow(beta1, Step);
        double bc2 = 1 - Math.Pow(beta2, Step);
        long decayed = part.DecayedInShard;
        if (decayed > 0 && weightDecay != 0)
            Master.narrow(0, 0, decayed).mul_(1 - lr * weightDecay);
        ExpAvg.mul_(beta1).add_(g, alpha: 1 - beta1);
        ExpAvgSq.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
        var denom = (ExpAvgSq.sqrt() / Math.Sqrt(bc2)).add_(eps);
        Master.addcdiv_(ExpAvg, denom, value: -(lr / bc1));
        if (!Offload) return Master;
        deviceParams!.copy_(Master);
        return deviceParams;
    }

    /// <summary>Sum of squares of the gradient slice, for the global norm: a float64 scalar on the slice's device (in
    /// the caller's dispose scope), so the step does not wait for the device.</summary>
    public Tensor GradSquareSum() => Grad.to(ScalarType.Float64).square().sum();

    public void Dispose()
    {
        Grad.Dispose();
        Master.Dispose();
        ExpAvg.Dispose();
        ExpAvgSq.Dispose();
        hostGrad?.Dispose();
        deviceParams?.Dispose();
    }
}
