using ZCode.Data;

namespace ZCode.Tests.Data;

public class PartOffsetsTests
{
    [Test]
    public void MapsEveryIndexToItsPartAndSkipsEmptyParts()
    {
        var offsets = new PartOffsets();
        foreach (var n in new[] { 0, 2, 0, 0, 3, 0 }) offsets.Add(n);
        Assert.That(offsets.Count, Is.EqualTo(5));
        var expected = new[] { (1, 0), (1, 1), (4, 0), (4, 1), (4, 2) };
        for (int i = 0; i < 5; i++) Assert.That(offsets.Locate(i), Is.EqualTo(expected[i]), $"index {i}");
        Assert.Throws<ArgumentOutOfRangeException>(() => offsets.Locate(5));
        Assert.Throws<ArgumentOutOfRangeException>(() => offsets.Locate(-1));
    }

    [Test]
    public void NoPartsHoldNothing()
    {
        var offsets = new PartOffsets();
        Assert.That(offsets.Count, Is.EqualTo(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => offsets.Locate(0));
    }
}
