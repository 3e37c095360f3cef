using System.Text.Json;
using ZCode.Cli;
using ZCode.Config;
using ZCode.Model;

namespace ZCode.Tests.Cli;

/// <summary>`zcode plan --json` reports the planner's counts under the documented keys.</summary>
public class PlanCommandTests
{
    [Test]
    public void JsonHasTheDocumentedKeysAndValues()
    {
        var stdout = new StringWriter();
        var code = CliApp.Run(["plan", "--json", "--set", "model.moe.experts=8"], stdout, new StringWriter());
        Assert.That(code, Is.EqualTo(0));
        using var doc = JsonDocument.Parse(stdout.ToString());
        var expected = ParameterCount.Of(ConfigLoader.LoadDefault(["model.moe.experts=8"]).Model);
        var r = doc.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(r.GetProperty("total_params").GetInt64(), Is.EqualTo(expected.Total));
            Assert.That(r.GetProperty("base_params").GetInt64(), Is.EqualTo(expected.Base));
            Assert.That(r.GetProperty("expert_params").GetInt64(), Is.EqualTo(expected.Expert));
            Assert.That(r.GetProperty("active_params_per_token").GetInt64(), Is.EqualTo(expected.ActivePerToken));
            Assert.That(r.GetProperty("experts").GetInt32(), Is.EqualTo(8));
        });
    }
}
