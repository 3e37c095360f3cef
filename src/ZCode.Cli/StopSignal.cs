using System.Runtime.InteropServices;

namespace ZCode.Cli;

/// <summary>SIGUSR1 as a request to stop training gracefully (Linux and macOS; elsewhere nothing is registered).</summary>
internal static class StopSignal
{
    /// <summary>SIGUSR1's number: 10 on Linux, 30 on macOS. .NET names no such signal, but registration takes raw
    /// numbers cast to <see cref="PosixSignal"/>.</summary>
    private static int? Number => OperatingSystem.IsLinux() ? 10 : OperatingSystem.IsMacOS() ? 30 : null;

    /// <summary>Cancels <paramref name="stop"/> on SIGUSR1 until the returned registration is disposed.</summary>
    public static IDisposable? Register(CancellationTokenSource stop)
    {
        if (Number is not { } signal) return null;
        return PosixSignalRegistration.Create((PosixSignal)signal, context =>
        {
            context.Cancel = true; // the default action of SIGUSR1 is to terminate the process
            stop.Cancel();
        });
    }
}
