using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ZCode.Model;

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the generator of cuRAND
/// and of PyTorch's CUDA dropout), a counter-based generator: word w of block c under key k is a pure function of
/// (k, c, w), so any element can be drawn without drawing the ones before it and the draws vectorise.
/// <para>Element layout of <see cref="Fill"/>: elements come in groups of 32 sharing eight consecutive blocks;
/// element i is word (i % 32) / 8 of block 8 * (i / 32) + i % 8. The AVX-512 path computes eight blocks at once and
/// <see cref="Word"/> is its scalar definition.</para>
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>The four output words of block <paramref name="counter"/> (counter words 0 and 1; words 2 and 3 are
    /// zero) under the 64-bit <paramref name="key"/>.</summary>
    public static (uint, uint, uint, uint) Block(ulong counter, ulong key) =>
        Block((uint)counter, (uint)(counter >> 32), 0, 0, (uint)key, (uint)(key >> 32));

    /// <summary>Philox4x32-10 of a full 128-bit counter and 64-bit key (the published known-answer form).</summary>
    public static (uint, uint, uint, uint) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            (c0, c1, c2, c3) = ((uint)(p1 >> 32) ^ c1 ^ k0, (uint)p1, (uint)(p0 >> 32) ^ c3 ^ k1, (uint)p0);
            k0 += W0;
            k1 += W1;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>Random word of element <paramref name="index"/> under <paramref name="key"/> (the layout above).</summary>
    public static uint Word(ulong key, long index)
    {
        long group = index >> 5;
        int r = (int)(index & 31);
        var (a, b, c, d) = Block((ulong)(group * 8 + (r & 7)), key);
        return (r >> 3) switch { 0 => a, 1 => b, 2 => c, _ => d };
    }

    /// <summary>Dropout multipliers for elements [<paramref name="first"/>, first + destination.Length) of the
    /// stream <paramref name="key"/>: <paramref name="scale"/> where the element's word is below
    /// <paramref name="threshold"/> (kept), else 0. <typeparamref name="T"/> is float or a 16-bit float's bits.</summary>
    public static void Fill<T>(Span<T> destination, ulong key, long first, uint threshold, T scale) where T : unmanaged
    {
        int done = 0;
        // Leading part of a 32-element group, element by element.
        while (done < destination.Length && ((first + done) & 31) != 0)
        {
            destination[done] = Word(key, first + done) < threshold ? scale : default;
            done++;
        }
        if (Avx512F.IsSupported && (typeof(T) == typeof(float) || typeof(T) == typeof(ushort)))
            done += FillGroups(destination[done..], key, (first + done) >> 5, threshold, scale);
        for (; done < destination.Length; done++)
            destination[done] = Word(key, first + done) < threshold ? scale : default;
    }

    /// <summary>Whole 32-element groups from group <paramref name="group"/> on, eight blocks per iteration; returns the
    /// elements written (a multiple of 32).</summary>
    private static int FillGroups<T>(Span<T> destination, ulong key, long group, uint threshold, T scale) where T : unmanaged
    {
        int groups = destination.Length / 32;
        var lanes = Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
        var low = Vector512.Create(0xFFFFFFFFUL);
        var m0 = Vector512.Create((ulong)M0).AsUInt32();
        var m1 = Vector512.Create((ulong)M1).AsUInt32();
        var limit = Vector512.Create(threshold);
        uint scaleBits = typeof(T) == typeof(float) ? Unsafe.As<T, uint>(ref scale) : Unsafe.As<T, ushort>(ref scale);
        var scaleVector = Vector512.Create(scaleBits);
        for (int g = 0; g < groups; g++)
        {
            var counter = Vector512.Create((ulong)(group + g) * 8) + lanes;
            Vector512<ulong> x0 = counter & low, x1 = counter >> 32, x2 = Vector512<ulong>.Zero, x3 = Vector512<ulong>.Zero;
            uint k0 = (uint)key, k1 = (uint)(key >> 32);
            for (int round = 0; round < 10; round++)
            {
                var p0 = Avx512F.Multiply(x0.AsUInt32(), m0);
                var p1 = Avx512F.Multiply(x2.AsUInt32(), m1);
                x0 = (p1 >> 32) ^ x1 ^ Vector512.Create((ulong)k0);
                x1 = p1 & low;
                x2 = (p0 >> 32) ^ x3 ^ Vector512.Create((ulong)k1);
                x3 = p0 & low;
                k0 += W0;
                k1 += W1;
            }
            // Narrow keeps each lane's low word: elements 0-15 of the group are words 0 and 1, 16-31 words 2 and 3.
            var keep01 = Vector512.LessThan(Vector512.Narrow(x0, x1), limit) & scaleVector;
            var keep23 = Vector512.LessThan(Vector512.Narrow(x2, x3), limit) & scaleVector;
            var target = destination.Slice(g * 32, 32);
            if (typeof(T) == typeof(float))
            {
                var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<T, uint>(target);
                keep01.CopyTo(floats);
                keep23.CopyTo(floats[16..]);
            }
            else
                Vector512.Narrow(keep01, keep23).CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<T, ushort>(target));
        }
        return groups * 32;
    }
}
