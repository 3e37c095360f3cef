using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Benchmarks;

/// <summary>
/// The matrix-multiplication rate of a device in a dtype: the best of a few n x n x n products (2 n^3 FLOPs each),
/// what model FLOPs utilisation is measured against. A large square product runs close to the machine's peak.
/// </summary>
public sealed class MatmulRate : IDisposable
{
    private readonly Tensor a, b;
    private readonly Device device;
    private readonly int n;

    /// <summary>Allocates the two n x n operands once and warms caches and thread pools with one product, so that each
    /// <see cref="Measure"/> afterwards times only products.</summary>
    public MatmulRate(Device device, ScalarType dtype, int n = 2048)
    {
        this.device = device;
        this.n = n;
        a = randn(new long[] { n, n }, dtype, device).DetachFromDisposeScope();
        b = randn(new long[] { n, n }, dtype, device).DetachFromDisposeScope();
        Measure(1);
    }

    /// <summary>GFLOP/s of the fastest of <paramref name="products"/> products.</summary>
    public double Measure(int products)
    {
        double best = double.MaxValue;
        for (int i = 0; i < products; i++)
        {
            var clock = Stopwatch.StartNew();
            using (a.mm(b))
                if (device.type == DeviceType.CUDA) cuda.synchronize(device);
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / best / 1e9;
    }

    public void Dispose()
    {
        a.Dispose();
        b.Dispose();
    }
}
