namespace ZCode.Tests.Data;

/// <summary>Paths of the repository (found by walking up to ZCode.Trainer.sln) and temporary test folders.</summary>
internal static class DataTestPaths
{
    public static string RepoRoot => CliRunner.RepoRoot;
    public static string DataSamples => Path.Combine(RepoRoot, "data-samples");
    public static string SpmModel => Path.Combine(DataSamples, "spm.model");
    public static string SpmVocab => Path.Combine(DataSamples, "spm.vocab");

    private static readonly Lazy<ZCode.Text.SpmTokenizer> Tok = new(() => ZCode.Text.SpmTokenizer.Load(SpmModel));

    /// <summary>The sample SentencePiece model, loaded once.</summary>
    public static ZCode.Text.SpmTokenizer Tokenizer => Tok.Value;

    public static readonly string[] SampleLanguages =
        { "eng_Latn", "deu_Latn", "fra_Latn", "rus_Cyrl", "zho_Hans", "jpn_Jpan", "arb_Arab", "hin_Deva", "swh_Latn", "tur_Latn" };

    /// <summary>A fresh empty folder under the system temp dir, deleted by <see cref="IDisposable.Dispose"/>.</summary>
    public static TempDir NewTempDir() => new();

    internal sealed class TempDir : IDisposable
    {
        public TempDir()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "zcode-test-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public string Write(string name, string text)
        {
            var p = System.IO.Path.Combine(Path, name);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
            File.WriteAllText(p, text, new System.Text.UTF8Encoding(false));
            return p;
        }

        public string WriteBytes(string name, byte[] bytes)
        {
            var p = System.IO.Path.Combine(Path, name);
            File.WriteAllBytes(p, bytes);
            return p;
        }

        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
