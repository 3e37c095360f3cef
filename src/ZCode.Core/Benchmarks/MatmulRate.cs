using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Benchmarks;

/// <summary>
/// The matrix-multiplication rate of a device in a dtype: the best of a few n x n x n products (2 n^3 FLOPs each),
/// what model FLOPs utilisation is measured against. A large square product runs close to the machine's peak.
/// </summary>
public static class MatmulRate
{
    public static double GigaflopsPerSecond(Device device, ScalarType dtype, int n = 2048, int repeats = 5)
    {
        using var scope = NewDisposeScope();
        var a = randn(new long[] { n, n }, dtype, device);
        var b = randn(new long[] { n, n }, dtype, device);
        double best = double.MaxValue;
        for (int i = 0; i < repeats + 1; i++)
        {
            var clock = Stopwatch.StartNew();
            using (a.mm(b))
                if (device.type == DeviceType.CUDA) cuda.synchronize(device);
            if (i > 0) best = Math.Min(best, clock.Elapsed.TotalSeconds); // the first warms caches and thread pools
        }
        return 2.0 * n * n * n / best / 1e9;
    }
}
