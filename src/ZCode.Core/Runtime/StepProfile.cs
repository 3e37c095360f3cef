using System.Diagnostics;

namespace ZCode.Runtime;

/// <summary>
/// Wall time per phase of a training step (attention, FFN, router, dispatch/combine, experts, loss, backward,
/// optimizer), summed while <see cref="Enabled"/> (<c>zcode bench train --profile</c>); otherwise a phase costs one
/// branch. Phases nest: an outer phase's time includes its inner ones, which are reported by their own name too. On a
/// GPU, kernels run asynchronously: <see cref="Synchronize"/> (set by the profiler's user) makes each phase wait for
/// the device so its time is its own.
/// </summary>
public static class StepProfile
{
    private static readonly Dictionary<string, (double Seconds, long Calls)> totals = new(StringComparer.Ordinal);

    /// <summary>Whether phases are timed (single-threaded use: the training loop's thread).</summary>
    public static bool Enabled { get; set; }

    /// <summary>Waits for the device at each phase boundary (null on CPU, where operations are synchronous).</summary>
    public static Action? Synchronize { get; set; }

    /// <summary>Times the phase <paramref name="name"/> until the returned value is disposed.</summary>
    public static Phase Measure(string name) => Enabled ? new Phase(name, Begin()) : default;

    private static long Begin()
    {
        Synchronize?.Invoke();
        return Stopwatch.GetTimestamp();
    }

    /// <summary>Seconds and calls per phase since the last <see cref="Reset"/>.</summary>
    public static IReadOnlyDictionary<string, (double Seconds, long Calls)> Totals => totals;

    public static void Reset() => totals.Clear();

    /// <summary>A running phase; disposing it adds its time.</summary>
    public readonly struct Phase(string? name, long start) : IDisposable
    {
        public void Dispose()
        {
            if (name is null) return;
            Synchronize?.Invoke();
            var (seconds, calls) = totals.GetValueOrDefault(name);
            totals[name] = (seconds + Stopwatch.GetElapsedTime(start).TotalSeconds, calls + 1);
        }
    }
}
