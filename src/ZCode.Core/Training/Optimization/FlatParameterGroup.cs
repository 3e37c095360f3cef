using TorchSharp;
using ZCode.Parallel;
using static TorchSharp.torch;

namespace ZCode.Training.Optimization;

/// <summary>
/// One group of parameters (the non-expert ones over the world, or this rank's experts over their expert-data-parallel
/// group) living in one flat fp32 buffer laid out by a <see cref="FlatPartition"/> (weight-decayed parameters first):
/// every parameter is a view of <see cref="Values"/>, so AdamW, clipping and the collectives are a few large operations
/// instead of several small ones per parameter. At ZeRO 0 and 1 every gradient is a view of one flat buffer too; ZeRO 2
/// leaves the gradients to autograd, frees them after each step's reduce-scatter (no rank keeps the full gradient
/// between steps) and stages them bucket by bucket.
/// <para>This rank updates its slice of the vector: all of it at ZeRO 0 (the partition is over one rank), elements
/// [rank*S, (rank+1)*S) at ZeRO 1 and 2, which are then all-gathered. AdamW is TorchSharp's op for op (decoupled decay
/// p *= 1 - lr*wd, then Adam with bias correction, denominator sqrt(v)/sqrt(1-b2^t) + eps). The master weights are the
/// slice of <see cref="Values"/> itself, or with ZeRO-Offload host copies that the update runs on. On the CPU the update is
/// <see cref="FusedAdamW"/>'s few passes (the same numbers bit for bit) and the gradient's sum of squares one pass.</para>
/// </summary>
internal sealed class FlatParameterGroup : IDisposable
{
    private readonly FlatPartition part;
    private readonly ICommunicator comm;
    private readonly int stage;
    private readonly long bucket;
    private readonly double beta1, beta2, eps, weightDecay;
    private readonly Tensor? grads;          // [ranks * S] at ZeRO 0/1: every .grad is a view
    private readonly Tensor? shardGrad;      // [S] at ZeRO 2: this rank's slice of the reduced gradient
    private readonly Tensor? staging;        // one bucket of every rank's pieces, for reduce-scatter and all-gather
    private readonly Tensor? hostGrad;       // offload: the gradient slice on the host
    private Tensor? scratch;                 // CPU: square roots of one chunk of the fused update

    /// <param name="part">The layout; over one rank at ZeRO 0, over <paramref name="comm"/>'s ranks at ZeRO 1/2.</param>
    /// <param name="bucketElements">Elements per collective.</param>
    public FlatParameterGroup(FlatPartition part, ICommunicator comm, Device device, int stage, bool offload, long bucketElements,
        double beta1, double beta2, double eps, double weightDecay)
    {
        if (part.Ranks != (stage == 0 ? 1 : comm.Size))
            throw new ArgumentException($"a ZeRO {stage} partition over {part.Ranks} ranks for a group of {comm.Size}", nameof(part));
        this.part = part;
        this.comm = comm;
        this.stage = stage;
        bucket = Math.Max(1, bucketElements);
        (this.beta1, this.beta2, this.eps, this.weightDecay) = (beta1, beta2, eps, weightDecay);
        long total = part.Ranks * part.ShardSize;
        Values = zeros(new[] { total }, ScalarType.Float32, device).DetachFromDisposeScope();
        if (stage < 2) grads = zeros(new[] { total }, ScalarType.Float32, device).DetachFromDisposeScope();
        else shardGrad = zeros(new[] { part.ShardSize }, ScalarType.Float32, device).DetachFromDisposeScope();
        if (stage > 0 && comm.Size > 1)
            staging = zeros(new[] { part.Ranks * part.Chunk }, ScalarType.Float32, device).DetachFromDisposeScope();
        using (no_grad())
            foreach (var s in part.Slots)
            {
                using var view = Values.narrow(0, s.Offset, s.Numel).view(s.Param.shape);
                view.copy_(s.Param);
                s.Param.set_(view);
                if (grads is null) continue;
                using var g = grads.narrow(0, s.Offset, s.Numel).view(s.Param.shape);
                s.Param.grad = g;
            }

        var home = offload ? CPU : device;
        long n = part.ShardSize;
        Master = (offload ? zeros(new[] { n }, ScalarType.Float32, CPU) : Values.narrow(0, part.ShardStart, n)).DetachFromDisposeScope();
        ExpAvg = zeros(new[] { n }, ScalarType.Float32, home).DetachFromDisposeScope();
        ExpAvgSq = zeros(new[] { n }, ScalarType.Float32, home).DetachFromDisposeScope();
        Offload = offload;
        if (offload) hostGrad = zeros(new[] { n }, ScalarType.Float32, CPU).DetachFromDisposeScope();
        LoadMasterFromValues();
    }

    public FlatPartition Partition => part;
    /// <summary>Every parameter of the group, end to end (the tail past the partition's N is padding, always zero).</summary>
    public Tensor Values { get; }
    /// <summary>fp32 master weights of this rank's slice [S]: a view of <see cref="Values"/>, or a host copy when offloaded.</summary>
    public Tensor Master { get; }
    public Tensor ExpAvg { get; }
    public Tensor ExpAvgSq { get; }
    public bool Offload { get; }
    /// <summary>AdamW steps taken (one count for every element).</summary>
    public long Step { get; set; }

    /// <summary>Bytes of optimizer state: moments, plus the master copy when offloaded (otherwise the slice of the
    /// parameters is the master).</summary>
    public long StateBytes => (ExpAvg.numel() + ExpAvgSq.numel() + (Offload ? Master.numel() : 0)) * 4;

    /// <summary>This rank's slice of the summed gradient, valid after <see cref="Reduce"/>.</summary>
    internal Tensor SliceGrad => shardGrad ?? grads!.narrow(0, part.ShardStart, part.ShardSize);

    /// <summary>Clears the gradients before a step's micro-batches accumulate into them. ZeRO 0/1 zero the flat buffer
    /// in place (the .grad views must never be set to none); ZeRO 2's were freed after the last reduction.</summary>
    public void ZeroGrad() => grads?.zero_();

    /// <summary>
    /// Sums the gradients over the group (they are summed, not averaged: each micro-batch's loss is already divided by
    /// the global step's target tokens). ZeRO 0/1: all-reduce of the flat buffer in contiguous buckets; ZeRO 2: each
    /// bucket of every rank's pieces is staged and reduce-scattered, so this rank receives only its slice, and the full
    /// gradients are freed.
    /// </summary>
    public void Reduce()
    {
        using var scope = NewDisposeScope();
        if (grads is not null)
        {
            if (comm.Size == 1) return;
            long n = stage == 0 ? part.Numel : grads.shape[0];
            for (long at = 0; at < n; at += bucket)
                comm.AllReduce(grads.narrow(0, at, Math.Min(bucket, n - at)));
            return;
        }
        for (int k = 0; k < part.Buckets; k++)
        {
            var (start, len) = part.ChunkOf(k);
            var mine = shardGrad!.narrow(0, start, len);
            if (comm.Size == 1)
            {
                part.GatherGrads(start, mine);
                continue;
            }
            var pieces = staging!.narrow(0, 0, part.Ranks * len);
            for (int r = 0; r < part.Ranks; r++) part.GatherGrads(r * part.ShardSize + start, pieces.narrow(0, r * len, len));
            comm.ReduceScatter(pieces, mine);
        }
        foreach (var s in part.Slots) s.Param.grad = null;
    }

    /// <summary>Sum of squares of the gradient this rank updates (float64 scalar on its device, caller's scope).</summary>
    public Tensor GradSquareSum()
    {
        var g = SliceGrad;
        return FusedAdamW.Serves(g) ? tensor(FusedAdamW.SquareSum(g), ScalarType.Float64, g.device) : g.to(ScalarType.Float64).square().sum();
    }

    /// <summary>One AdamW step of this rank's slice at <paramref name="lr"/> on its gradient times
    /// <paramref name="gradScale"/> (the clipping coefficient, an fp32 scalar, or null for none); with ZeRO 1/2 the updated
    /// slices are then all-gathered into every rank's parameters.</summary>
    /// <remarks>On the CPU the scale is applied inside the fused update's first pass, where a separate multiply would
    /// read and write the whole gradient once more; the numbers are the same. The gradient buffer itself is left
    /// unscaled there (scaled in place elsewhere): nothing may read the gradients after the update.</remarks>
    public void Update(double lr, Tensor? gradScale)
    {
        using var scope = NewDisposeScope();
        Step++;
        var g = SliceGrad;
        if (Offload) g = hostGrad!.copy_(g);
        long decayed = part.DecayedInShard;
        if (FusedAdamW.Serves(Master, g, ExpAvg, ExpAvgSq))
        {
            scratch ??= FusedAdamW.Scratch(Master.numel()).DetachFromDisposeScope();
            FusedAdamW.Update(Master, g, ExpAvg, ExpAvgSq, scratch, decayed,
                AdamWScalars.For(lr, beta1, beta2, eps, weightDecay, Step, gradScale?.item<float>() ?? 1f));
        }
        else
        {
            if (gradScale is not null) g.mul_(gradScale);
            UpdateOpByOp(g, lr, decayed);
        }
        if (Offload) Values.narrow(0, part.ShardStart, part.ShardSize).copy_(Master);
        if (staging is null) return;
        for (int k = 0; k < part.Buckets; k++)
        {
            var (start, len) = part.ChunkOf(k);
            var pieces = staging.narrow(0, 0, part.Ranks * len);
            comm.AllGather(Values.narrow(0, part.ShardStart + start, len), pieces);
            for (int r = 0; r < part.Ranks; r++)
                Values.narrow(0, r * part.ShardSize + start, len).copy_(pieces.narrow(0, r * len, len));
        }
    }

    /// <summary>The update as LibTorch ops (GPU tensors); <see cref="FusedAdamW"/> computes the same on the CPU.</summary>
    private void UpdateOpByOp(Tensor g, double lr, long decayed)
    {
        double bc1 = 1 - Math.Pow(beta1, Step);
        double bc2 = 1 - Math.Pow(beta2, Step);
        if (decayed > 0 && weightDecay != 0)
            Master.narrow(0, 0, decayed).mul_(1 - lr * weightDecay);
        ExpAvg.mul_(beta1).add_(g, alpha: 1 - beta1);
        ExpAvgSq.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
        var denom = (ExpAvgSq.sqrt() / Math.Sqrt(bc2)).add_(eps);
        Master.addcdiv_(ExpAvg, denom, value: -(lr / bc1));
    }

    /// <summary>Takes the master weights from the parameters (after they were loaded from a checkpoint).</summary>
    public void LoadMasterFromValues()
    {
        if (Offload) Master.copy_(Values.narrow(0, part.ShardStart, part.ShardSize));
    }

    public void Dispose()
    {
        // The parameters keep their storage alive: Values and the gradient buffer are only released by them.
        foreach (var t in new[] { Values, grads, shardGrad, staging, hostGrad, Master, ExpAvg, ExpAvgSq, scratch })
            t?.Dispose();
    }
}
