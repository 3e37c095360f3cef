namespace ZCode.Data;

/// <summary>
/// Index arithmetic of an example set made of consecutive parts (corpora, shards): a global example index maps to
/// (part, index within the part). Parts may be empty; they are never returned.
/// </summary>
internal sealed class PartOffsets
{
    private readonly List<int> _starts = new() { 0 };

    /// <summary>Examples over all parts.</summary>
    public int Count => _starts[^1];

    /// <summary>Appends a part of <paramref name="count"/> examples.</summary>
    public void Add(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _starts.Add(checked(_starts[^1] + count));
    }

    /// <summary>The part holding example <paramref name="index"/> and its index there.</summary>
    public (int Part, int Local) Locate(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"0..{Count - 1}");
        int part = _starts.BinarySearch(index);
        part = part >= 0 ? part : ~part - 1;
        // Empty parts share their start with the next part: move past them to the one that holds the index.
        while (_starts[part + 1] <= index) part++;
        return (part, index - _starts[part]);
    }
}
