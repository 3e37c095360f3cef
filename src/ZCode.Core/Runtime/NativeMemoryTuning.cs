using System.Runtime.InteropServices;

namespace ZCode.Runtime;

/// <summary>
/// The process's native allocator, which LibTorch's CPU allocator (no cache of its own) leans on every step.
/// scripts/zcode preloads tcmalloc: its heap stays flat under a training run's varying batch shapes and its steps are
/// faster (bench/RESULTS.md, "Memory"). Without it, glibc malloc is tuned instead: no trimming, a 1 GiB top pad and
/// no mmap for large buffers, so freed activations are not page-faulted in again every step (2.2x faster m3-tiny steps
/// than glibc's defaults, 3770 -> 954 ms for a 128-expert MoE layer) at the price of a heap that grows over a long run.
/// Linux only; ZCODE_MALLOC_TUNING=0 leaves glibc's defaults.
/// </summary>
public static class NativeMemoryTuning
{
    private const int M_TRIM_THRESHOLD = -1;
    private const int M_TOP_PAD = -2;
    private const int M_MMAP_MAX = -4;
    private static int applied;
    private static string? allocator;

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int param, int value);

    /// <summary>tcmalloc or jemalloc when one is loaded into the process (LD_PRELOAD), else "glibc" (or the OS's).</summary>
    public static string Allocator => allocator ??= Detect();

    private static string Detect()
    {
        if (!OperatingSystem.IsLinux()) return "system";
        var maps = File.ReadAllText("/proc/self/maps");
        return maps.Contains("libtcmalloc", StringComparison.Ordinal) ? "tcmalloc"
            : maps.Contains("libjemalloc", StringComparison.Ordinal) ? "jemalloc" : "glibc";
    }

    /// <summary>How the allocator was set up, for the run's log.</summary>
    public static string Describe() => Allocator switch
    {
        "glibc" when applied == 1 => "glibc malloc, tuned (the heap of a long run grows: run through scripts/zcode with tcmalloc installed)",
        "glibc" => "glibc malloc",
        var other => other,
    };

    /// <summary>Applies the glibc tuning once per process when glibc is the allocator; returns whether it did.</summary>
    public static bool Apply()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("ZCODE_MALLOC_TUNING") == "0" || Allocator != "glibc")
            return false;
        if (Interlocked.Exchange(ref applied, 1) == 1)
            return true;
        try
        {
            return Mallopt(M_TRIM_THRESHOLD, int.MaxValue) == 1 & Mallopt(M_TOP_PAD, 1 << 30) == 1
                   & Mallopt(M_MMAP_MAX, 0) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            applied = 0;
            return false; // musl or another libc: keep its defaults
        }
    }
}
