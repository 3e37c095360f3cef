using TorchSharp;
var x = torch.randn(4, 4);
Console.WriteLine(x.matmul(x).sum().item<float>());
var cl = typeof(System.CommandLine.RootCommand).Assembly;
foreach (var t in new[]{"System.CommandLine.Command","System.CommandLine.Option`1","System.CommandLine.ParseResult","System.CommandLine.RootCommand"}) {
  var ty = cl.GetType(t)!; Console.WriteLine("== "+t);
  foreach (var m in ty.GetMembers(System.Reflection.BindingFlags.Public|System.Reflection.BindingFlags.Instance|System.Reflection.BindingFlags.DeclaredOnly)) Console.WriteLine("  "+m);
}
