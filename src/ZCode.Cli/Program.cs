namespace ZCode.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        ZCode.Runtime.NativeMemoryTuning.Apply();
        StopSignal.Install();
        return CliApp.Run(args);
    }
}
