using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace ZCode.Tests.Config;

/// <summary>
/// Which property getters the methods of an assembly call, found by decoding the IL of every method body with
/// System.Reflection.Metadata (no source text involved, so comments, strings and reflection do not count as reads).
/// A call made inside a lambda, iterator or async state machine belongs to the namespace of the type that declares it.
/// </summary>
internal static class PropertyGetterCalls
{
    private static readonly Dictionary<short, OperandType> Operands = typeof(OpCodes)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value, o => o.OperandType);

    /// <summary>"Namespace.Type.get_Name" for every getter called from a method whose namespace
    /// <paramref name="excludeNamespace"/> does not contain.</summary>
    public static HashSet<string> Find(string assemblyPath, string excludeNamespace)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var md = pe.GetMetadataReader();
        var calls = new HashSet<string>(StringComparer.Ordinal);
        foreach (var typeHandle in md.TypeDefinitions)
        {
            var ns = Namespace(md, typeHandle);
            if (ns == excludeNamespace || ns.StartsWith(excludeNamespace + ".", StringComparison.Ordinal))
                continue;
            foreach (var methodHandle in md.GetTypeDefinition(typeHandle).GetMethods())
            {
                var method = md.GetMethodDefinition(methodHandle);
                if (method.RelativeVirtualAddress == 0)
                    continue;
                var il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILReader();
                while (il.RemainingBytes > 0)
                {
                    short code = il.ReadByte();
                    if (code == 0xFE)
                        code = (short)(0xFE00 | il.ReadByte());
                    var operand = Operands[code];
                    if (operand == OperandType.InlineMethod)
                    {
                        if (Callee(md, MetadataTokens.EntityHandle(il.ReadInt32())) is { } callee)
                            calls.Add(callee);
                        continue;
                    }
                    Skip(ref il, operand);
                }
            }
        }
        return calls;
    }

    private static void Skip(ref BlobReader il, OperandType operand)
    {
        switch (operand)
        {
            case OperandType.InlineNone: break;
            case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: il.Offset += 1; break;
            case OperandType.InlineVar: il.Offset += 2; break;
            case OperandType.InlineI8 or OperandType.InlineR: il.Offset += 8; break;
            case OperandType.InlineSwitch:
                var targets = il.ReadInt32(); // read before Offset: `Offset += 4 * ReadInt32()` would use the old offset
                il.Offset += 4 * targets;
                break;
            default: il.Offset += 4; break;
        }
    }

    /// <summary>"Namespace.Type.Method" of a called method defined here or referenced in another assembly.</summary>
    private static string? Callee(MetadataReader md, EntityHandle handle)
    {
        switch (handle.Kind)
        {
            case HandleKind.MethodDefinition:
                var def = md.GetMethodDefinition((MethodDefinitionHandle)handle);
                return $"{TypeName(md, def.GetDeclaringType())}.{md.GetString(def.Name)}";
            case HandleKind.MemberReference:
                var reference = md.GetMemberReference((MemberReferenceHandle)handle);
                var name = md.GetString(reference.Name);
                return reference.Parent.Kind switch
                {
                    HandleKind.TypeReference => $"{TypeName(md, (TypeReferenceHandle)reference.Parent)}.{name}",
                    HandleKind.TypeDefinition => $"{TypeName(md, (TypeDefinitionHandle)reference.Parent)}.{name}",
                    _ => null, // members of generic instantiations: no schema type is generic
                };
            default:
                return null; // generic method instantiations: getters are not generic
        }
    }

    private static string TypeName(MetadataReader md, TypeDefinitionHandle handle)
    {
        var type = md.GetTypeDefinition(handle);
        var declaring = type.GetDeclaringType();
        return declaring.IsNil
            ? $"{md.GetString(type.Namespace)}.{md.GetString(type.Name)}"
            : $"{TypeName(md, declaring)}+{md.GetString(type.Name)}";
    }

    private static string TypeName(MetadataReader md, TypeReferenceHandle handle)
    {
        var type = md.GetTypeReference(handle);
        return type.ResolutionScope.Kind == HandleKind.TypeReference
            ? $"{TypeName(md, (TypeReferenceHandle)type.ResolutionScope)}+{md.GetString(type.Name)}"
            : $"{md.GetString(type.Namespace)}.{md.GetString(type.Name)}";
    }

    private static string Namespace(MetadataReader md, TypeDefinitionHandle handle)
    {
        var type = md.GetTypeDefinition(handle);
        var declaring = type.GetDeclaringType();
        return declaring.IsNil ? md.GetString(type.Namespace) : Namespace(md, declaring);
    }
}
