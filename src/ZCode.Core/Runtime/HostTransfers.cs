using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Runtime;

/// <summary>
/// The one place where the training loop moves data between host and device: batch uploads and reads of device
/// values (scalars, small statistics). Every call is counted per thread, so a test can check on a CPU-only machine
/// that a training run reads the device only at log steps (O(logged steps), not O(steps)); on CUDA each read is a
/// synchronisation, so the count is the number of times the GPU pipeline drains.
/// </summary>
public static class HostTransfers
{
    [ThreadStatic] private static long reads;
    [ThreadStatic] private static long uploads;

    /// <summary>Device-to-host reads made on this thread so far.</summary>
    public static long Reads => reads;

    /// <summary>Host-to-device uploads made on this thread so far.</summary>
    public static long Uploads => uploads;

    /// <summary>Reads the elements of <paramref name="t"/> (any device) into a managed array: one read.</summary>
    public static T[] Read<T>(Tensor t) where T : unmanaged
    {
        reads++;
        using var scope = NewDisposeScope();
        var host = t.device_type == DeviceType.CPU ? t.contiguous() : t.cpu().contiguous();
        using var accessor = host.data<T>();
        return accessor.ToArray();
    }

    /// <summary>Reads a one-element tensor: one read.</summary>
    public static T Item<T>(Tensor t) where T : unmanaged
    {
        reads++;
        return t.item<T>();
    }

    /// <summary>
    /// Uploads a managed array as a tensor of <paramref name="shape"/> on <paramref name="device"/>: one upload. On CUDA
    /// the host copy is pinned and the copy is asynchronous (non-blocking), so the upload overlaps queued kernels.
    /// </summary>
    public static Tensor Upload(long[] data, long[] shape, Device device)
    {
        uploads++;
        var host = torch.tensor(data, shape, ScalarType.Int64);
        if (device.type == DeviceType.CPU)
            return host;
        using (host)
        using (var pinned = host.pin_memory())
            return pinned.to(device, non_blocking: true);
    }
}
