using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace ZCode.Runtime;

/// <summary>
/// <c>ZCODE_LIBTORCH=/path/to/torch/lib</c>: runs zcode on an existing LibTorch 2.10 (a pip torch install's
/// <c>site-packages/torch/lib</c>, or a libtorch zip's <c>lib</c>) instead of the NuGet native packages, e.g. a CUDA
/// LibTorch with the self-contained bundle of <c>scripts/bundle-linux</c>.
/// <para>How: before the first TorchSharp call, the LibTorch libraries are dlopen'ed by absolute path (RTLD_NOW |
/// RTLD_GLOBAL), then LibTorchSharp (from the application folder, else from that folder). TorchSharp's own loader
/// asks for <c>torch_cpu</c>/<c>torch_cuda</c>/<c>LibTorchSharp</c> by bare name, and the dynamic linker answers such a
/// name with the already loaded library of that SONAME, so the whole process uses the given LibTorch. RTLD_NOW
/// makes an incompatible LibTorch fail here, with the linker's message naming the missing symbol, instead of at
/// some later call.</para>
/// </summary>
public static class LibTorchLoader
{
    public const string Variable = "ZCODE_LIBTORCH";

    /// <summary>What must be in the folder (load order: dependencies first).</summary>
    public static readonly string[] Required = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    /// <summary>Loaded when present, after libtorch_cpu and before libtorch (a CUDA LibTorch has them).</summary>
    public static readonly string[] Optional = ["libc10_cuda.so", "libtorch_cuda.so"];

    public const string SharpLibrary = "libLibTorchSharp.so";

    /// <summary>The LibTorch major.minor that TorchSharp 0.107's LibTorchSharp was built against.</summary>
    public const string SupportedVersion = "2.10";

    private const int RTLD_NOW = 2, RTLD_GLOBAL = 0x100;

    [DllImport("libc", EntryPoint = "dlopen")] private static extern IntPtr DlOpenLibc(string path, int flags);
    [DllImport("libc", EntryPoint = "dlerror")] private static extern IntPtr DlErrorLibc();
    [DllImport("libdl.so.2", EntryPoint = "dlopen")] private static extern IntPtr DlOpenLibdl(string path, int flags);
    [DllImport("libdl.so.2", EntryPoint = "dlerror")] private static extern IntPtr DlErrorLibdl();

    private static string? loadedFrom;
    private static bool bound;

    /// <summary>The folder LibTorch was loaded from by this class, or null (the build's own LibTorch).</summary>
    public static string? LoadedFrom => loadedFrom;

    /// <summary>Loads LibTorch from <c>$ZCODE_LIBTORCH</c> when it is set (once per process). Returns the folder, or
    /// null when the variable is unset. Throws <see cref="LibTorchLoadException"/> (one line: what is missing or
    /// incompatible) when it cannot, or, with <paramref name="requireLibTorch"/>, when the variable is unset and this
    /// build has no LibTorch of its own and none is on the library path.</summary>
    public static string? LoadFromEnvironment(bool requireLibTorch = true)
    {
        var dir = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(dir))
        {
            if (requireLibTorch)
                RequireSomeLibTorch();
            return null;
        }
        return Load(dir);
    }

    /// <summary>Without ZCODE_LIBTORCH, a build without its own LibTorch (external) needs one on the library path
    /// (LD_LIBRARY_PATH); otherwise this fails with one line here, rather than TorchSharp's page-long message later.</summary>
    private static void RequireSomeLibTorch()
    {
        if (!OperatingSystem.IsLinux() || BundledLibTorch() is not null)
            return;
        // LibTorchSharp links libtorch, libc10 and libtorch_cpu by name: loading it (with immediate binding) is the test.
        var sharp = SharpCandidates(null).FirstOrDefault(File.Exists);
        if (sharp is null || DlOpen(sharp) != IntPtr.Zero)
            return;
        var error = DlError() ?? "not found";
        throw new LibTorchLoadException($"this zcode has no LibTorch of its own and none on the library path fits ({error}): set " +
                                        $"{Variable} to LibTorch {SupportedVersion}'s lib folder (e.g. .../site-packages/torch/lib of pip torch=={SupportedVersion}.*)");
    }

    /// <summary>Checks <paramref name="dir"/> and loads LibTorch and LibTorchSharp from it (see the class remarks).</summary>
    public static string Load(string dir)
    {
        if (loadedFrom is not null)
            return loadedFrom;
        var full = Check(dir);
        if (BundledLibTorch() is { } bundled)
            throw new LibTorchLoadException($"{Variable}={dir}: this zcode build carries its own LibTorch ({bundled}); " +
                                            "use the external build (scripts/bundle-linux, or dotnet build -p:TorchBackend=external) with " + Variable);
        var version = VersionOf(full);
        var libraries = Required.Take(2).Concat(Optional).Concat(Required.Skip(2))
            .Select(name => Path.Combine(full, name)).Where(File.Exists).ToList();
        foreach (var path in libraries)
            Open(path, dir, version, []);
        var sharp = SharpCandidates(full).FirstOrDefault(File.Exists)
            ?? throw new LibTorchLoadException($"{Variable}={dir}: {SharpLibrary} not found next to zcode or in {full} " +
                                               "(it ships in the TorchSharp NuGet package, runtimes/linux-x64/native)");
        Open(sharp, dir, version, libraries);
        loadedFrom = full;
        return full;
    }

    /// <summary>The checks that need no loading: the folder exists, has the libraries LibTorchSharp links against,
    /// and (when a version file is found) is LibTorch 2.10. Returns the full path.</summary>
    public static string Check(string dir)
    {
        if (!OperatingSystem.IsLinux())
            throw new LibTorchLoadException($"{Variable} is supported on Linux only; on other systems use a TorchSharp backend package (-p:TorchBackend=...)");
        var full = Path.GetFullPath(dir);
        if (!Directory.Exists(full))
            throw new LibTorchLoadException($"{Variable}={dir}: no such folder (expected LibTorch {SupportedVersion}'s lib folder, e.g. site-packages/torch/lib)");
        var missing = Required.Where(f => !File.Exists(Path.Combine(full, f))).ToList();
        if (missing.Count > 0)
            throw new LibTorchLoadException($"{Variable}={dir}: missing {string.Join(", ", missing)} (expected LibTorch " +
                                            $"{SupportedVersion}'s lib folder, e.g. site-packages/torch/lib of a pip torch=={SupportedVersion}.* install)");
        var version = VersionOf(full);
        if (version is not null && !(version == SupportedVersion || version.StartsWith(SupportedVersion + ".", StringComparison.Ordinal)))
            throw new LibTorchLoadException($"{Variable}={dir}: LibTorch {version} found, but this zcode (TorchSharp 0.107) needs LibTorch " +
                                            $"{SupportedVersion}.x (e.g. pip install torch=={SupportedVersion}.*)");
        return full;
    }

    /// <summary>The LibTorch version from the files next to the lib folder: a pip install's <c>../version.py</c>
    /// (<c>__version__ = '2.10.0+cu128'</c>) or a libtorch zip's <c>../build-version</c>; null when neither exists.</summary>
    public static string? VersionOf(string libDir)
    {
        var parent = Path.GetDirectoryName(Path.GetFullPath(libDir).TrimEnd('/'));
        if (parent is null) return null;
        var py = Path.Combine(parent, "version.py");
        if (File.Exists(py))
        {
            var m = Regex.Match(File.ReadAllText(py), @"__version__\s*=\s*['""]([^'""]+)['""]");
            if (m.Success) return m.Groups[1].Value.Trim();
        }
        var build = Path.Combine(parent, "build-version");
        if (File.Exists(build))
        {
            var v = File.ReadAllText(build).Trim();
            if (v.Length > 0) return v;
        }
        return null;
    }

    private static IEnumerable<string> SharpCandidates(string? libDir)
    {
        var app = AppContext.BaseDirectory;
        yield return Path.Combine(app, SharpLibrary);
        yield return Path.Combine(app, "runtimes", "linux-x64", "native", SharpLibrary);
        if (libDir is not null)
            yield return Path.Combine(libDir, SharpLibrary);
    }

    /// <summary>The path of a LibTorch that came with this build (TorchBackend=cpu/cuda-*), or null (external).</summary>
    private static string? BundledLibTorch()
    {
        var app = AppContext.BaseDirectory;
        return new[] { Path.Combine(app, "libtorch_cpu.so"), Path.Combine(app, "runtimes", "linux-x64", "native", "libtorch_cpu.so") }
            .FirstOrDefault(File.Exists);
    }

    /// <param name="providers">The libraries loaded before this one: when the linker reports an undefined symbol,
    /// every import of <paramref name="path"/> that they lack is counted and the first few are named.</param>
    private static void Open(string path, string dir, string? version, IReadOnlyList<string> providers)
    {
        if (DlOpen(path) != IntPtr.Zero)
            return;
        var error = DlError() ?? "unknown dlopen error";
        var found = version is null ? "version unknown: no ../version.py or ../build-version" : $"version {version}";
        var detail = "";
        if (error.Contains("undefined symbol", StringComparison.Ordinal))
        {
            detail = $"; LibTorchSharp needs LibTorch {SupportedVersion}.x with the C++11 ABI";
            if (providers.Count > 0 && MissingSymbols(path, providers) is { Count: > 0 } missing)
                detail += $"; {missing.Count} symbol(s) it imports are missing from this LibTorch: " +
                          string.Join(", ", missing.Take(3)) + (missing.Count > 3 ? ", ..." : "");
        }
        throw new LibTorchLoadException($"{Variable}={dir}: cannot load {Path.GetFileName(path)} (LibTorch {found}): {error}{detail}");
    }

    private static IReadOnlyList<string> MissingSymbols(string path, IReadOnlyList<string> providers)
    {
        try { return ElfSymbols.Unresolved(path, providers); }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException) { return []; }
    }

    private static IntPtr DlOpen(string path)
    {
        // Bind dlopen and dlerror before the call whose error matters (binding a P/Invoke on its first call loads
        // libc by trying name variants, which can leave its own dlerror state), then clear the error state.
        if (!bound)
        {
            try { DlOpenLibc("libc.so.6", RTLD_NOW); }
            catch (EntryPointNotFoundException) { DlOpenLibdl("libc.so.6", RTLD_NOW); }
            bound = true;
        }
        DlError();
        try { return DlOpenLibc(path, RTLD_NOW | RTLD_GLOBAL); }
        catch (EntryPointNotFoundException) { return DlOpenLibdl(path, RTLD_NOW | RTLD_GLOBAL); }   // glibc < 2.34
    }

    private static string? DlError()
    {
        IntPtr p;
        try { p = DlErrorLibc(); }
        catch (EntryPointNotFoundException) { p = DlErrorLibdl(); }
        return p == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(p);
    }
}

/// <summary>LibTorch could not be loaded from <c>ZCODE_LIBTORCH</c>: a runtime-environment problem (exit code 1).</summary>
public sealed class LibTorchLoadException(string message) : Exception(message);
