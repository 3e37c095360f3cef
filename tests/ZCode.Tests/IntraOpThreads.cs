using static TorchSharp.torch;

namespace ZCode.Tests;

/// <summary>LibTorch's intra-op thread count put back as it was when the test is done with it (tests that compare
/// thread counts change it; the rest of the suite must not see the change).</summary>
internal sealed class IntraOpThreads : IDisposable
{
    private readonly int before = get_num_threads();

    private IntraOpThreads() { }

    /// <summary>Remembers the current count (and sets <paramref name="threads"/> when given) until disposed.</summary>
    public static IntraOpThreads Kept(int? threads = null)
    {
        var kept = new IntraOpThreads();
        if (threads is { } n) set_num_threads(n);
        return kept;
    }

    public void Dispose() => set_num_threads(before);
}
