using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using ZCode.Parallel;

namespace ZCode.Training;

/// <summary>Who holds a run directory: written into its lock file so that a refused run can name it.</summary>
public sealed record RunLockHolder(int Pid, string Host, DateTimeOffset Since);

/// <summary>
/// The one writer of a run directory: an exclusive lock on <c>DIR/run.lock</c>, held until disposed. On Linux it is
/// flock(2), which belongs to the open file and is released by the kernel however the process ends (kill -9 included),
/// so a lock is never stale; the file itself stays (unlinking a flock file lets two processes lock two different files).
/// </summary>
public sealed class RunDirectoryLock : IDisposable
{
    public const string FileName = "run.lock";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private readonly IDisposable file;

    private RunDirectoryLock(string path, IDisposable file)
    {
        Path = path;
        this.file = file;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>
    /// Takes the lock of <paramref name="directory"/> (created when missing) or throws a <see cref="UserInputException"/>
    /// naming the process that holds it. Never waits: a held directory belongs to a run that is still going.
    /// </summary>
    public static RunDirectoryLock Acquire(string directory)
    {
        Directory.CreateDirectory(directory);
        var path = System.IO.Path.Combine(directory, FileName);
        var holder = new RunLockHolder(Environment.ProcessId, System.Net.Dns.GetHostName(), DateTimeOffset.Now);
        var content = JsonSerializer.SerializeToUtf8Bytes(holder, Json);
        IDisposable? file = OperatingSystem.IsLinux() ? LinuxLock(path, content) : ExclusiveOpen(path, content);
        return file is null ? throw Refused(directory) : new RunDirectoryLock(path, file);
    }

    /// <summary>
    /// Rank 0 takes the lock of <paramref name="directory"/> (null on the other ranks); every rank learns the outcome
    /// from one broadcast, so a refusal ends every rank with the same bad-input error (exit 2), and no rank writes
    /// into a directory another run holds.
    /// </summary>
    public static RunDirectoryLock? AcquireOnRank0(ICommunicator world, string directory)
    {
        ArgumentNullException.ThrowIfNull(world);
        RunDirectoryLock? held = null;
        ExceptionDispatchInfo? failure = null;
        long outcome = 0; // 0 locked, 1 held by another run, 2 could not lock
        if (world.Rank == 0)
        {
            try { held = Acquire(directory); }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
                outcome = e is UserInputException ? 1 : 2;
            }
        }
        try { outcome = HostCollectives.Broadcast(world, outcome, 0); }
        catch
        {
            held?.Dispose();
            throw;
        }
        failure?.Throw();
        return outcome switch
        {
            0 => held,
            1 => throw Refused(directory),
            _ => throw new InvalidOperationException($"rank 0 could not lock {System.IO.Path.Combine(directory, FileName)} (see its error)"),
        };
    }

    /// <summary>The holder recorded in <paramref name="directory"/>'s lock file, or null when it cannot be read.</summary>
    public static RunLockHolder? ReadHolder(string directory)
    {
        var path = System.IO.Path.Combine(directory, FileName);
        // The holder writes its line right after locking: an empty file is a holder that has not written it yet.
        for (int attempt = 0; attempt < 20; attempt++)
        {
            try
            {
                var bytes = ReadAll(path);
                if (bytes.Length > 0)
                    return JsonSerializer.Deserialize<RunLockHolder>(bytes, Json);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException) { }
            Thread.Sleep(50);
        }
        return null;
    }

    private static UserInputException Refused(string directory)
    {
        var who = ReadHolder(directory) is { } h
            ? $"pid {h.Pid} on host {h.Host}, since {h.Since:yyyy-MM-dd HH:mm:ss}"
            : "a process that has not recorded itself";
        return new UserInputException($"{directory}: another zcode train is writing into this run directory ({who}); " +
                                      "wait for it to end, stop it, or choose another --output");
    }

    private static IDisposable? LinuxLock(string path, byte[] content)
    {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0x1A4 /* 0644 */);
        if (fd < 0)
            throw new IOException($"{path}: cannot open the run lock ({Marshal.GetLastPInvokeErrorMessage()})");
        var handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
        try
        {
            if (flock(fd, LOCK_EX | LOCK_NB) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EWOULDBLOCK)
                {
                    handle.Dispose();
                    return null;
                }
                throw new IOException($"{path}: cannot lock ({Marshal.GetLastPInvokeErrorMessage()})");
            }
            if (ftruncate(fd, 0) != 0)
                throw new IOException($"{path}: cannot write the holder ({Marshal.GetLastPInvokeErrorMessage()})");
            RandomAccess.Write(handle, content, 0);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Off Linux the closest equivalent is an open that denies other writers (Windows share modes): the OS refuses a
    /// second one and closes the handle when the process dies. Readers are let in, so a refused run can still read who
    /// holds it.
    /// </summary>
    private static IDisposable? ExclusiveOpen(string path, byte[] content)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        }
        catch (IOException e) when ((e.HResult & 0xFFFF) is 32 or 33) // sharing or lock violation
        {
            return null;
        }
        stream.SetLength(0);
        stream.Write(content);
        stream.Flush();
        return stream;
    }

    private static byte[] ReadAll(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return copy.ToArray();
        }
        // .NET's own open takes a shared flock, which the holder's exclusive one refuses: read through a plain fd.
        int fd = open(path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
            throw new IOException($"{path}: {Marshal.GetLastPInvokeErrorMessage()}");
        using var handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
        var buffer = new byte[4096];
        int n = RandomAccess.Read(handle, buffer, 0);
        return buffer[..n];
    }

    public void Dispose() => file.Dispose();

    private const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_CLOEXEC = 0x80000;
    private const int LOCK_EX = 2, LOCK_NB = 4, EWOULDBLOCK = 11;

    [DllImport("libc", SetLastError = true)] private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);
    [DllImport("libc", SetLastError = true)] private static extern int flock(int fd, int operation);
    [DllImport("libc", SetLastError = true)] private static extern int ftruncate(int fd, long length);
}
