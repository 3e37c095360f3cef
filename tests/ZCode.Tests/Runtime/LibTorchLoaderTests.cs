using System.Diagnostics;
using ZCode.Runtime;

namespace ZCode.Tests.Runtime;

/// <summary>ZCODE_LIBTORCH's checks: every failure is one line naming what is missing or incompatible. (Loading a
/// real LibTorch needs a fresh process with the external build: scripts/bundle-linux --test does that.)</summary>
public class LibTorchLoaderTests
{
    private string root = "";

    [SetUp]
    public void CreateRoot() => Directory.CreateDirectory(root = Path.Combine(Path.GetTempPath(), "zcode-libtorch-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void RemoveRoot() => Directory.Delete(root, recursive: true);

    private string Lib(params string[] files)
    {
        var lib = Path.Combine(root, "torch", "lib");
        Directory.CreateDirectory(lib);
        foreach (var f in files) File.WriteAllText(Path.Combine(lib, f), "not an ELF file");
        return lib;
    }

    [Test]
    public void MissingFolder()
    {
        var e = Assert.Throws<LibTorchLoadException>(() => LibTorchLoader.Check(Path.Combine(root, "nope")))!;
        Assert.That(e.Message, Does.StartWith($"ZCODE_LIBTORCH={Path.Combine(root, "nope")}: no such folder"));
    }

    [Test]
    public void MissingLibrariesAreListed()
    {
        var e = Assert.Throws<LibTorchLoadException>(() => LibTorchLoader.Check(Lib("libc10.so")))!;
        Assert.That(e.Message, Does.Contain("missing libtorch_cpu.so, libtorch.so"));
        Assert.That(e.Message, Does.Not.Contain('\n'));
    }

    [Test]
    public void WrongVersionFromPipVersionFile()
    {
        var lib = Lib("libc10.so", "libtorch_cpu.so", "libtorch.so");
        File.WriteAllText(Path.Combine(root, "torch", "version.py"), "__version__ = '2.9.1+cu128'\ngit_version = 'abc'\n");
        Assert.That(LibTorchLoader.VersionOf(lib), Is.EqualTo("2.9.1+cu128"));
        var e = Assert.Throws<LibTorchLoadException>(() => LibTorchLoader.Check(lib))!;
        Assert.That(e.Message, Does.Contain("LibTorch 2.9.1+cu128 found, but this zcode (TorchSharp 0.107) needs LibTorch 2.10.x"));
    }

    [Test]
    public void RightVersionPassesTheChecks()
    {
        var lib = Lib("libc10.so", "libtorch_cpu.so", "libtorch.so");
        File.WriteAllText(Path.Combine(root, "torch", "build-version"), "2.10.0+cu128\n");
        Assert.That(LibTorchLoader.VersionOf(lib), Is.EqualTo("2.10.0+cu128"));
        Assert.That(LibTorchLoader.Check(lib), Is.EqualTo(Path.GetFullPath(lib)));
    }

    [Test]
    public void CliWithEmptyFolder_ExitsWith1AndOneLine()
    {
        // A fresh process: the loader runs before anything touches TorchSharp.
        var dll = typeof(ZCode.Cli.CliApp).Assembly.Location;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("--help");
        start.Environment[LibTorchLoader.Variable] = Lib();
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.EqualTo(1), stderr);
        Assert.That(stdout, Is.Empty);
        Assert.That(stderr.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(stderr, Does.StartWith($"zcode: error: ZCODE_LIBTORCH={Lib()}: missing libc10.so, libtorch_cpu.so, libtorch.so"));
    }
}

/// <summary>The ELF import reader behind ZCODE_LIBTORCH's list of missing symbols, on the real LibTorchSharp.</summary>
public class ElfSymbolsTests
{
    private static string Native(string file) => Path.Combine(Path.GetDirectoryName(typeof(ZCode.Cli.CliApp).Assembly.Location)!,
        "runtimes", "linux-x64", "native", file);

    [Test]
    public void LibTorchSharpImports_ResolveAgainstItsLibTorch_NotAgainstLibcAlone()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("ELF/dlopen: Linux only");
        var sharp = Native(LibTorchLoader.SharpLibrary);
        var imports = ElfSymbols.Imports(sharp);
        Assert.That(imports, Has.Some.StartsWith("_ZN2at"), "LibTorchSharp binds LibTorch's C++ (at::) symbols");
        Assert.That(imports, Has.Some.StartsWith("_ZN3c10"));
        // The LibTorch this test process already runs on (the same files, so nothing new is loaded) provides them all.
        Assert.That(ElfSymbols.Unresolved(sharp, [Native("libtorch.so")]), Is.Empty);
        // libc alone lacks every at:: import: this is what an incompatible LibTorch looks like.
        var missing = ElfSymbols.Unresolved(sharp, ["libc.so.6"]);
        Assert.That(missing, Has.Some.StartsWith("_ZN2at"));
        Assert.That(missing, Has.None.EqualTo("malloc"));
    }
}
