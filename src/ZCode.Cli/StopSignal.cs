using System.Runtime.InteropServices;

namespace ZCode.Cli;

/// <summary>
/// SIGUSR1 as a request to stop training gracefully (Linux and macOS; elsewhere there is no such signal). Installed once
/// at start-up for the whole process: the default action of SIGUSR1 is to terminate, so a signal that came during data
/// preparation, model building or shutdown would otherwise kill a rank and fail the whole job. Before training starts
/// the request makes the trainer stop at once. After training it is ignored.
/// </summary>
internal static class StopSignal
{
    private static readonly CancellationTokenSource Requests = new();
    private static PosixSignalRegistration? registration;

    /// <summary>Cancelled once SIGUSR1 has arrived.</summary>
    public static CancellationToken Token => Requests.Token;

    /// <summary>SIGUSR1's number: 10 on Linux, 30 on macOS. .NET names no such signal, but registration takes raw
    /// numbers cast to <see cref="PosixSignal"/>.</summary>
    private static int? Number => OperatingSystem.IsLinux() ? 10 : OperatingSystem.IsMacOS() ? 30 : null;

    /// <summary>Installs the handler (once; later calls do nothing).</summary>
    public static void Install()
    {
        if (registration is not null || Number is not { } signal) return;
        registration = PosixSignalRegistration.Create((PosixSignal)signal, context =>
        {
            context.Cancel = true; // keep the process alive: the trainer decides when to stop
            Requests.Cancel();
        });
    }
}
