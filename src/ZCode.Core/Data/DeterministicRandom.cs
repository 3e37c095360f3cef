namespace ZCode.Data;

/// <summary>
/// xoshiro256** pseudo-random generator (Blackman &amp; Vigna), seeded through SplitMix64. Same seed, same stream on
/// every platform and .NET version (unlike <see cref="System.Random"/>); the whole state is four 64-bit words
/// (<see cref="State"/>) so it can be saved in a checkpoint and restored exactly.
/// </summary>
public sealed class DeterministicRandom
{
    private ulong _s0, _s1, _s2, _s3;

    public DeterministicRandom(long seed)
    {
        var x = (ulong)seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>The generator state as four longs (bit patterns of the xoshiro words); settable to restore.</summary>
    public long[] State
    {
        get => new[] { (long)_s0, (long)_s1, (long)_s2, (long)_s3 };
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Length != 4) throw new ArgumentException("xoshiro256** state has 4 words", nameof(value));
            if (value.All(v => v == 0)) throw new ArgumentException("xoshiro256** state must not be all zero", nameof(value));
            (_s0, _s1, _s2, _s3) = ((ulong)value[0], (ulong)value[1], (ulong)value[2], (ulong)value[3]);
        }
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        var result = RotL(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotL(_s3, 45);
        return result;
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, <paramref name="maxExclusive"/>), unbiased (Lemire's multiply-and-reject).</summary>
    public long NextLong(long maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "must be positive");
        var range = (ulong)maxExclusive;
        var threshold = (0 - range) % range;
        while (true)
        {
            var high = Math.BigMul(NextUInt64(), range, out var low);
            if (low >= threshold) return (long)high;
        }
    }

    /// <summary>Uniform integer in [0, <paramref name="maxExclusive"/>).</summary>
    public int NextInt(int maxExclusive) => (int)NextLong(maxExclusive);

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A seed derived from <paramref name="seed"/> and a path of integers (SplitMix64 mixing), for sub-streams.</summary>
    public static long DeriveSeed(long seed, params long[] path)
    {
        var x = (ulong)seed;
        var h = SplitMix64(ref x);
        foreach (var p in path)
        {
            x = h ^ ((ulong)p * 0x9E3779B97F4A7C15UL);
            h = SplitMix64(ref x);
        }
        return (long)h;
    }

    private static ulong SplitMix64(ref ulong x)
    {
        var z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong RotL(ulong x, int k) => (x << k) | (x >> (64 - k));
}
