using ZCode.Config;

namespace ZCode.Tests.Config;

/// <summary>
/// Every key of the schema is read by the code that runs: a key that is validated and documented but that nothing
/// outside the config code reads would be a setting without an effect.
/// </summary>
[TestFixture]
public class ConfigKeysReadTests
{
    [Test]
    public void EverySchemaKeyIsReadOutsideTheConfigNamespace()
    {
        var assemblies = new[] { typeof(ZCodeConfig).Assembly, typeof(ZCode.Cli.CliApp).Assembly };
        var calls = assemblies.SelectMany(a => PropertyGetterCalls.Find(a.Location, "ZCode.Config")).ToHashSet();
        var keys = SchemaKeys(typeof(ZCodeConfig), "").ToList();
        Assert.That(keys, Has.Count.GreaterThan(60));
        var unread = keys.Where(k => !calls.Contains(k.Getter)).Select(k => k.Path).ToList();
        Assert.That(unread, Is.Empty, "schema keys whose property no code outside ZCode.Config reads");
    }

    [Test]
    public void TheScanFindsCallsAcrossAssemblies()
    {
        // train.device is read by the CLI (a reference into ZCode.Core), data.both_directions by DataSource.
        var cli = PropertyGetterCalls.Find(typeof(ZCode.Cli.CliApp).Assembly.Location, "ZCode.Config");
        Assert.That(cli, Does.Contain($"{typeof(TrainConfig).FullName}.get_Device"));
        var core = PropertyGetterCalls.Find(typeof(ZCodeConfig).Assembly.Location, "ZCode.Config");
        Assert.That(core, Does.Contain($"{typeof(DataConfig).FullName}.get_BothDirections"));
    }

    [Test]
    public void ReadsInsideLambdasBelongToTheDeclaringNamespace()
    {
        var tests = typeof(ConfigKeysReadTests).Assembly.Location;
        var getter = $"{typeof(Probe).FullName}.get_Value";
        Assert.That(PropertyGetterCalls.Find(tests, "ZCode.NoSuchNamespace"), Does.Contain(getter));
        Assert.That(PropertyGetterCalls.Find(tests, typeof(Probe).Namespace!), Does.Not.Contain(getter),
            "the lambda's compiler-generated class is nested in ProbeReader, so it is excluded with it");
    }

    private sealed class Probe
    {
        public int Value { get; init; }
    }

    private static class ProbeReader
    {
        public static readonly Func<Probe, int> Read = p => p.Value;
    }

    private static IEnumerable<(string Path, string Getter)> SchemaKeys(Type type, string path)
    {
        foreach (var key in ConfigKeys.For(type))
        {
            var keyPath = ConfigKeys.Join(path, key.Name);
            yield return (keyPath, $"{key.Property.DeclaringType!.FullName}.{key.Property.GetMethod!.Name}");
            var valueType = key.Property.PropertyType;
            if (ConfigKeys.IsList(valueType, out var element))
                valueType = element;
            if (!ConfigKeys.IsScalar(valueType))
                foreach (var child in SchemaKeys(valueType, ConfigKeys.IsList(key.Property.PropertyType, out _) ? keyPath + "[]" : keyPath))
                    yield return child;
        }
    }
}
