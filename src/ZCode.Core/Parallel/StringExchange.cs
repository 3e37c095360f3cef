using System.Text;
using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>Small host-side metadata (file lists, error messages) exchanged over a communicator as UTF-8 bytes.</summary>
public static class StringExchange
{
    /// <summary>Collective: every rank's <paramref name="text"/>, indexed by rank. Two all-gathers (lengths, then the
    /// bytes padded to the longest). <paramref name="device"/> is where the communicator's tensors must live (CPU for
    /// local/mpi, the rank's GPU for nccl).</summary>
    public static string[] AllGather(ICommunicator comm, string text, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(comm);
        device ??= CPU;
        var bytes = Encoding.UTF8.GetBytes(text);
        using var length = tensor(new long[] { bytes.Length }, device: device);
        using var lengths = zeros(comm.Size, ScalarType.Int64, device);
        comm.AllGather(length, lengths);
        long[] all = lengths.cpu().data<long>().ToArray();
        long max = Math.Max(1, all.Max());

        var padded = new byte[max];
        bytes.CopyTo(padded, 0);
        using var mine = tensor(padded, device: device);
        using var gathered = zeros(comm.Size * max, ScalarType.Byte, device);
        comm.AllGather(mine, gathered);
        var host = gathered.cpu().data<byte>().ToArray();
        return Enumerable.Range(0, comm.Size).Select(r => Encoding.UTF8.GetString(host, (int)(r * max), (int)all[r])).ToArray();
    }
}
