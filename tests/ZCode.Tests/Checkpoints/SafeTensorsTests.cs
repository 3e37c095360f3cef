using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using ZCode.Checkpoints;
using static TorchSharp.torch;

namespace ZCode.Tests.Checkpoints;

/// <summary>The hand-written safetensors writer/reader against the format's spec, byte by byte.</summary>
public class SafeTensorsTests
{
    private string dir = "";

    [SetUp]
    public void Create() => Directory.CreateDirectory(dir = Path.Combine(Path.GetTempPath(), "zcode-st-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void Remove() => Directory.Delete(dir, recursive: true);

    [Test]
    public void HeaderAndDataLayoutFollowTheSpec()
    {
        var path = Path.Combine(dir, "a.safetensors");
        using var f = tensor(new float[] { 1, 2, 3, 4, 5, 6 }).reshape(2, 3);
        using var i = tensor(42L);
        using var big = arange(8, dtype: ScalarType.Float32).reshape(2, 4);
        using var slice = big[1]; // a view with a storage offset: written from the right address
        var written = SafeTensors.Write(path, [("f", f), ("step", i), ("row", slice)], new Dictionary<string, string> { ["k"] = "v" });

        var bytes = File.ReadAllBytes(path);
        Assert.That(written.Size, Is.EqualTo(bytes.Length));
        Assert.That(written.Sha256, Is.EqualTo(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes))));
        long n = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        Assert.That(n % 8, Is.EqualTo(0), "header padded so data is 8-byte aligned");
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n).TrimEnd(' '));
        var h = header.RootElement;
        Assert.That(h.GetProperty("__metadata__").GetProperty("k").GetString(), Is.EqualTo("v"));
        Assert.That(h.GetProperty("f").GetProperty("dtype").GetString(), Is.EqualTo("F32"));
        Assert.That(h.GetProperty("f").GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(h.GetProperty("step").GetProperty("dtype").GetString(), Is.EqualTo("I64"));
        Assert.That(h.GetProperty("step").GetProperty("shape").GetArrayLength(), Is.EqualTo(0));
        long Off(string name, int k) => h.GetProperty(name).GetProperty("data_offsets")[k].GetInt64();
        Assert.That((Off("f", 0), Off("f", 1), Off("step", 0), Off("step", 1), Off("row", 0), Off("row", 1)),
            Is.EqualTo((0L, 24L, 24L, 32L, 32L, 48L)));
        Assert.That(bytes.Length, Is.EqualTo(8 + n + 48));
        var data = bytes.AsSpan((int)(8 + n));
        for (int k = 0; k < 6; k++)
            Assert.That(BinaryPrimitives.ReadSingleLittleEndian(data[(4 * k)..]), Is.EqualTo(k + 1f));
        Assert.That(BinaryPrimitives.ReadInt64LittleEndian(data[24..]), Is.EqualTo(42));
        for (int k = 0; k < 4; k++)
            Assert.That(BinaryPrimitives.ReadSingleLittleEndian(data[(32 + 4 * k)..]), Is.EqualTo(4f + k));

        using var reader = new SafeTensors.Reader(path);
        using var back = reader.Read("f");
        Assert.That(back.eq(f).all().item<bool>(), Is.True);
        Assert.That(reader.Read("step").item<long>(), Is.EqualTo(42));
        // Reading into a view fills the parent tensor's memory in place.
        using var target = zeros(3, 4);
        using (var row = target[2]) reader.ReadInto("row", row);
        Assert.That(target[2].eq(slice).all().item<bool>(), Is.True);
        Assert.That(target[0].abs().sum().item<float>(), Is.EqualTo(0f));
    }

    [Test]
    public void Bfloat16RoundTripsAndShapeMismatchIsNamed()
    {
        var path = Path.Combine(dir, "b.safetensors");
        using var t = randn(3, 5).to_type(ScalarType.BFloat16);
        SafeTensors.Write(path, [("w", t)]);
        using var reader = new SafeTensors.Reader(path);
        Assert.That(reader.Tensors["w"].Dtype, Is.EqualTo("BF16"));
        using var back = reader.Read("w");
        Assert.That(back.eq(t).all().item<bool>(), Is.True);
        var e = Assert.Throws<UserInputException>(() => reader.ReadInto("w", zeros(new long[] { 5, 3 }, dtype: ScalarType.BFloat16)))!;
        Assert.That(e.Message, Does.Contain("'w'"));
    }

    [Test]
    public void TruncatedFileIsBadInput()
    {
        var path = Path.Combine(dir, "c.safetensors");
        using var t = randn(16, 16);
        SafeTensors.Write(path, [("w", t)]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 10)]);
        Assert.Throws<UserInputException>(() => new SafeTensors.Reader(path));
    }
}
