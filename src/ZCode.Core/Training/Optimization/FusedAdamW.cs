using System.Runtime.Intrinsics;
using TorchSharp;
using ZCode.Parallel;
using ZCode.Runtime;
using static TorchSharp.torch;

namespace ZCode.Training.Optimization;

/// <summary>The fp32 scalars of one AdamW step, each rounded to float as LibTorch rounds a double scalar operand;
/// <see cref="GradScale"/> multiplies every gradient element first (gradient clipping), as an in-place mul_ would.</summary>
internal readonly record struct AdamWScalars(float Decay, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
    float SqrtBiasCorrection2, float Eps, float StepSize, float GradScale = 1f)
{
    public static AdamWScalars For(double lr, double beta1, double beta2, double eps, double weightDecay, long step,
        float gradScale = 1f) => new(
        (float)(1 - lr * weightDecay), (float)beta1, (float)(1 - beta1), (float)beta2, (float)(1 - beta2),
        (float)Math.Sqrt(1 - Math.Pow(beta2, step)), (float)eps, (float)(-(lr / (1 - Math.Pow(beta1, step)))), gradScale);
}

/// <summary>
/// AdamW and the gradient's sum of squares over flat fp32 CPU buffers in few passes over memory, instead of the
/// nine LibTorch ops (four of them allocating) of the op-by-op update. The arithmetic is that sequence's, element for
/// element, so the result is bit for bit the same (test): m = fma(g, 1-b1, m*b1) as LibTorch's add with alpha,
/// v = fma((1-b2)*g, g, v*b2) as its addcmul, p = p + (step*m) / (sqrt(v)/sqrt(bc2) + eps) as its addcdiv. The square
/// root is LibTorch's own (its vectorised sqrt is not the correctly rounded one .NET computes), taken chunk by chunk
/// while the chunk is still in cache.
/// </summary>
internal static unsafe class FusedAdamW
{
    // Elements per chunk: the chunk's m, v, p and square roots (4 x 1 MiB) stay in cache between the passes.
    private const int Chunk = 1 << 18;
    // Elements per partial sum of squares.
    private const int Block = 1 << 14;

    // Parts of a pass start at multiples of this many elements (a cache line of floats).
    private const long Align = 16;

    /// <summary>A scratch buffer for <see cref="Update"/> of <paramref name="n"/> elements: one chunk's square roots for
    /// each part the update splits into at the current thread count (an update at more threads later stays at this
    /// many parts).</summary>
    public static Tensor Scratch(long n) => empty(new[] { Math.Min(n, Chunk) * OpenMpTeam.Parts(n, Chunk) }, ScalarType.Float32, CPU);

    /// <summary>Whether the fused path serves these tensors: contiguous fp32 on the CPU.</summary>
    public static bool Serves(params Tensor[] ts)
        => ts.All(t => t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32 && t.is_contiguous());

    /// <summary>One AdamW step of <paramref name="p"/> on the gradient <paramref name="g"/> times the scalars' gradient
    /// scale (<paramref name="g"/> itself is left as it is); the first <paramref name="decayed"/> elements are weight-decayed.
    /// <paramref name="scratch"/> is at least <see cref="Scratch"/>'s size for one thread.</summary>
    /// <remarks>The passes run on LibTorch's OpenMP threads (<see cref="OpenMpTeam"/>), each over its own range of
    /// elements with its own part of the scratch; every element's arithmetic is the same whatever the split.</remarks>
    public static void Update(Tensor p, Tensor g, Tensor m, Tensor v, Tensor scratch, long decayed, AdamWScalars s)
    {
        long n = p.numel(), chunk = Math.Min(n, Chunk);
        if (g.numel() != n || m.numel() != n || v.numel() != n || scratch.numel() < chunk)
            throw new ArgumentException("fused AdamW: buffers of different lengths");
        if (n == 0) return;
        float* pp = (float*)TensorMemory.Pointer(p), pg = (float*)TensorMemory.Pointer(g), pm = (float*)TensorMemory.Pointer(m);
        float* pv = (float*)TensorMemory.Pointer(v), ps = (float*)TensorMemory.Pointer(scratch);
        int parts = (int)Math.Min(OpenMpTeam.Parts(n, Chunk), scratch.numel() / chunk);
        OpenMpTeam.Run(parts, part =>
        {
            var (from, to) = OpenMpTeam.Share(n, part, parts, Align);
            for (long at = from; at < to; at += Chunk)
            {
                int len = (int)Math.Min(Chunk, to - at);
                Moments(pg + at, pm + at, pv + at, len, s);
                using (var root = scratch.narrow(0, part * chunk, len))
                using (var second = v.narrow(0, at, len))
                    root.copy_(second).sqrt_();
                Weights(pp + at, pm + at, ps + part * chunk, len, decayed - at, s);
            }
        });
    }

    /// <summary>Sum of the squares of <paramref name="g"/> in float64 (each square taken in float64): block sums, on
    /// the OpenMP team, added in block order, so the result does not depend on the thread count.</summary>
    public static double SquareSum(Tensor g)
    {
        long n = g.numel();
        var pg = (float*)TensorMemory.Pointer(g);
        var blocks = new double[(n + Block - 1) / Block];
        int parts = OpenMpTeam.Parts(n, Chunk);
        OpenMpTeam.Run(parts, part =>
        {
            var (from, to) = OpenMpTeam.Share(blocks.Length, part, parts);
            for (long b = from; b < to; b++)
                blocks[b] = Squares(pg + b * Block, (int)Math.Min(Block, n - b * Block));
        });
        double sum = 0;
        foreach (var block in blocks) sum += block;
        return sum;
    }

    private static void Moments(float* g, float* m, float* v, int n, AdamWScalars s)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var b1 = Vector256.Create(s.Beta1); var c1 = Vector256.Create(s.OneMinusBeta1);
            var b2 = Vector256.Create(s.Beta2); var c2 = Vector256.Create(s.OneMinusBeta2);
            var scale = Vector256.Create(s.GradScale);
            for (; i <= n - 8; i += 8)
            {
                // The scaled gradient is rounded before use, as the separate in-place multiply would store it.
                var gv = Vector256.Load(g + i) * scale;
                Vector256.FusedMultiplyAdd(gv, c1, Vector256.Load(m + i) * b1).Store(m + i);
                Vector256.FusedMultiplyAdd(c2 * gv, gv, Vector256.Load(v + i) * b2).Store(v + i);
            }
        }
        for (; i < n; i++)
        {
            float gi = g[i] * s.GradScale;
            m[i] = MathF.FusedMultiplyAdd(gi, s.OneMinusBeta1, m[i] * s.Beta1);
            v[i] = MathF.FusedMultiplyAdd(s.OneMinusBeta2 * gi, gi, v[i] * s.Beta2);
        }
    }

    /// <param name="decayed">How many of these elements, from the first, are weight-decayed (may be negative or past n).</param>
    private static void Weights(float* p, float* m, float* root, int n, long decayed, AdamWScalars s)
    {
        int cut = (int)Math.Clamp(decayed, 0, n);
        if (s.Decay != 1f)
            Scale(p, cut, s.Decay);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var bc = Vector256.Create(s.SqrtBiasCorrection2); var eps = Vector256.Create(s.Eps);
            var step = Vector256.Create(s.StepSize);
            for (; i <= n - 8; i += 8)
            {
                var denom = Vector256.Load(root + i) / bc + eps;
                (Vector256.Load(p + i) + step * Vector256.Load(m + i) / denom).Store(p + i);
            }
        }
        for (; i < n; i++)
            p[i] = p[i] + s.StepSize * m[i] / (root[i] / s.SqrtBiasCorrection2 + s.Eps);
    }

    private static void Scale(float* p, int n, float by)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var f = Vector256.Create(by);
            for (; i <= n - 8; i += 8) (Vector256.Load(p + i) * f).Store(p + i);
        }
        for (; i < n; i++) p[i] *= by;
    }

    private static double Squares(float* g, int n)
    {
        int i = 0;
        var acc = Vector256<double>.Zero;
        if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(g + i));
                acc = Vector256.FusedMultiplyAdd(hi, hi, Vector256.FusedMultiplyAdd(lo, lo, acc));
            }
        double sum = Vector256.Sum(acc);
        for (; i < n; i++) sum += (double)g[i] * g[i];
        return sum;
    }
}
