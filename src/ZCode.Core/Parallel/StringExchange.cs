using System.Text;
using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>Small host-side metadata (file lists, error messages) exchanged over a communicator as UTF-8 bytes.</summary>
public static class StringExchange
{
    /// <summary>Collective: every rank's <paramref name="text"/>, indexed by rank. Two all-gathers (lengths, then the
    /// bytes padded to the longest), on the communicator's device.</summary>
    public static string[] AllGather(ICommunicator comm, string text)
    {
        ArgumentNullException.ThrowIfNull(comm);
        var device = comm.Device;
        var bytes = Encoding.UTF8.GetBytes(text);
        long[] all = HostCollectives.AllGather(comm, bytes.Length);
        long max = Math.Max(1, all.Max());

        var padded = new byte[max];
        bytes.CopyTo(padded, 0);
        using var mine = tensor(padded, device: device);
        using var gathered = zeros(comm.Size * max, ScalarType.Byte, device);
        comm.AllGather(mine, gathered);
        using var gatheredHost = gathered.cpu();
        var host = gatheredHost.data<byte>().ToArray();
        return Enumerable.Range(0, comm.Size).Select(r => Encoding.UTF8.GetString(host, (int)(r * max), (int)all[r])).ToArray();
    }
}
