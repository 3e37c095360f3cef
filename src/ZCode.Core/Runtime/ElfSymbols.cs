using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace ZCode.Runtime;

/// <summary>
/// The undefined (imported) global symbols of a 64-bit little-endian ELF shared library, read from its .dynsym, and
/// which of them a set of loaded libraries cannot resolve: how ZCODE_LIBTORCH names every symbol LibTorchSharp needs
/// that a given LibTorch lacks (the dynamic linker's own message names only the first).
/// </summary>
public static class ElfSymbols
{
    private const int SHT_DYNSYM = 11, STB_GLOBAL = 1;
    private const int RTLD_LAZY = 1;

    [DllImport("libc", EntryPoint = "dlsym")] private static extern IntPtr DlSymLibc(IntPtr handle, string symbol);
    [DllImport("libdl.so.2", EntryPoint = "dlsym")] private static extern IntPtr DlSymLibdl(IntPtr handle, string symbol);
    [DllImport("libc", EntryPoint = "dlopen")] private static extern IntPtr DlOpenLibc(string path, int flags);
    [DllImport("libdl.so.2", EntryPoint = "dlopen")] private static extern IntPtr DlOpenLibdl(string path, int flags);

    /// <summary>Names of the global undefined symbols of <paramref name="path"/> (weak ones are optional and skipped).</summary>
    public static IReadOnlyList<string> Imports(string path)
    {
        var elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7F || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F' || elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException($"{path}: not a 64-bit little-endian ELF file");
        var span = elf.AsSpan();
        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3C..]);
        var names = new List<string>();
        for (int i = 0; i < shnum; i++)
        {
            var sh = span.Slice((int)(shoff + (long)i * shentsize), shentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != SHT_DYNSYM) continue;
            long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
            long size = (long)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x20..]);
            int link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            long entsize = (long)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x38..]);
            var strtab = span.Slice((int)(shoff + (long)link * shentsize), shentsize);
            long strOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(strtab[0x18..]);
            for (long s = offset + entsize; s + entsize <= offset + size; s += entsize)   // entry 0 is the null symbol
            {
                var sym = span.Slice((int)s, (int)entsize);
                uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(sym);
                int binding = sym[4] >> 4;
                ushort section = BinaryPrimitives.ReadUInt16LittleEndian(sym[6..]);
                if (section != 0 || binding != STB_GLOBAL || nameOffset == 0) continue;
                int start = (int)(strOffset + nameOffset);
                int end = span[start..].IndexOf((byte)0);
                names.Add(System.Text.Encoding.ASCII.GetString(span.Slice(start, end)));
            }
        }
        return names;
    }

    /// <summary>The imports of <paramref name="path"/> that none of <paramref name="libraries"/> (absolute paths or
    /// sonames, opened with their dependencies) provides.</summary>
    public static IReadOnlyList<string> Unresolved(string path, IEnumerable<string> libraries)
    {
        var handles = libraries.Select(Open).Where(h => h != IntPtr.Zero).ToList();
        return Imports(path).Where(name => !handles.Any(h => Sym(h, name) != IntPtr.Zero)).ToList();
    }

    private static IntPtr Open(string library)
    {
        try { return DlOpenLibc(library, RTLD_LAZY); }
        catch (EntryPointNotFoundException) { return DlOpenLibdl(library, RTLD_LAZY); }
    }

    private static IntPtr Sym(IntPtr handle, string name)
    {
        try { return DlSymLibc(handle, name); }
        catch (EntryPointNotFoundException) { return DlSymLibdl(handle, name); }
    }
}
