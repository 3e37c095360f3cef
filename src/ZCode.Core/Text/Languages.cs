namespace ZCode.Text;

/// <summary>One language of the registry: canonical FLORES-200 style code <c>xxx_Scrp</c> (ISO 639-3 + ISO 15924).</summary>
/// <param name="Code">Canonical code, e.g. <c>eng_Latn</c>.</param>
/// <param name="Name">English name.</param>
/// <param name="Iso639_1">Two-letter ISO 639-1 code (every language of the registry has one).</param>
/// <param name="Script">ISO 15924 script code, e.g. <c>Latn</c>.</param>
/// <param name="ScriptName">English name of the script.</param>
public sealed record LanguageInfo(string Code, string Name, string Iso639_1, string Script, string ScriptName)
{
    /// <summary>ISO 639-3 part of the code (<c>eng</c>).</summary>
    public string Iso639_3 => Code[..Code.IndexOf('_')];
}

/// <summary>
/// The 50 languages zcode knows (the FLORES-200 codes of data-samples/README.md): canonical codes, English names, ISO 639-1 aliases and scripts.
/// <see cref="Resolve"/> accepts the canonical code (any case, '-' or '_'), the ISO 639-1 alias (<c>en</c>), the
/// ISO 639-3 part (<c>eng</c>) and the NTREX-128 codes that differ from ours (<c>fas</c>, <c>swa</c>, <c>aze-Latn</c>,
/// <c>zho-CN</c>, <c>ara</c>).
/// </summary>
public static class Languages
{
    private static readonly Dictionary<string, string> ScriptNames = new()
    {
        ["Latn"] = "Latin", ["Ethi"] = "Ethiopic", ["Arab"] = "Arabic", ["Beng"] = "Bengali", ["Cyrl"] = "Cyrillic",
        ["Grek"] = "Greek", ["Gujr"] = "Gujarati", ["Hebr"] = "Hebrew", ["Deva"] = "Devanagari", ["Armn"] = "Armenian",
        ["Jpan"] = "Japanese (Han + Hiragana + Katakana)", ["Knda"] = "Kannada", ["Geor"] = "Georgian",
        ["Khmr"] = "Khmer", ["Hang"] = "Hangul", ["Mlym"] = "Malayalam", ["Mymr"] = "Myanmar", ["Taml"] = "Tamil",
        ["Thai"] = "Thai", ["Hans"] = "Han (Simplified)",
    };

    private static LanguageInfo L(string code, string name, string iso1)
    {
        var script = code[(code.IndexOf('_') + 1)..];
        return new LanguageInfo(code, name, iso1, script, ScriptNames[script]);
    }

    /// <summary>All 50 languages, sorted by canonical code.</summary>
    public static IReadOnlyList<LanguageInfo> All { get; } = new[]
    {
        L("afr_Latn", "Afrikaans", "af"),
        L("amh_Ethi", "Amharic", "am"),
        L("arb_Arab", "Arabic (Modern Standard)", "ar"),
        L("azj_Latn", "Azerbaijani (North)", "az"),
        L("ben_Beng", "Bengali", "bn"),
        L("bul_Cyrl", "Bulgarian", "bg"),
        L("cat_Latn", "Catalan", "ca"),
        L("ces_Latn", "Czech", "cs"),
        L("dan_Latn", "Danish", "da"),
        L("deu_Latn", "German", "de"),
        L("ell_Grek", "Greek", "el"),
        L("eng_Latn", "English", "en"),
        L("est_Latn", "Estonian", "et"),
        L("fin_Latn", "Finnish", "fi"),
        L("fra_Latn", "French", "fr"),
        L("guj_Gujr", "Gujarati", "gu"),
        L("hau_Latn", "Hausa", "ha"),
        L("heb_Hebr", "Hebrew", "he"),
        L("hin_Deva", "Hindi", "hi"),
        L("hrv_Latn", "Croatian", "hr"),
        L("hun_Latn", "Hungarian", "hu"),
        L("hye_Armn", "Armenian", "hy"),
        L("ind_Latn", "Indonesian", "id"),
        L("isl_Latn", "Icelandic", "is"),
        L("ita_Latn", "Italian", "it"),
        L("jpn_Jpan", "Japanese", "ja"),
        L("kan_Knda", "Kannada", "kn"),
        L("kat_Geor", "Georgian", "ka"),
        L("kaz_Cyrl", "Kazakh", "kk"),
        L("khm_Khmr", "Khmer", "km"),
        L("kor_Hang", "Korean", "ko"),
        L("lit_Latn", "Lithuanian", "lt"),
        L("mal_Mlym", "Malayalam", "ml"),
        L("mar_Deva", "Marathi", "mr"),
        L("mya_Mymr", "Burmese", "my"),
        L("nld_Latn", "Dutch", "nl"),
        L("pes_Arab", "Persian (Western)", "fa"),
        L("pol_Latn", "Polish", "pl"),
        L("por_Latn", "Portuguese", "pt"),
        L("ron_Latn", "Romanian", "ro"),
        L("rus_Cyrl", "Russian", "ru"),
        L("spa_Latn", "Spanish", "es"),
        L("swe_Latn", "Swedish", "sv"),
        L("swh_Latn", "Swahili", "sw"),
        L("tam_Taml", "Tamil", "ta"),
        L("tha_Thai", "Thai", "th"),
        L("tur_Latn", "Turkish", "tr"),
        L("ukr_Cyrl", "Ukrainian", "uk"),
        L("vie_Latn", "Vietnamese", "vi"),
        L("zho_Hans", "Chinese (Simplified)", "zh"),
    };

    /// <summary>Extra aliases: the NTREX-128 / macrolanguage codes that differ from our canonical ones.</summary>
    private static readonly (string Alias, string Code)[] ExtraAliases =
    {
        ("fas", "pes_Arab"), ("swa", "swh_Latn"), ("aze", "azj_Latn"), ("aze_Latn", "azj_Latn"),
        ("zho_CN", "zho_Hans"), ("zh_CN", "zho_Hans"), ("ara", "arb_Arab"),
    };

    private static readonly Dictionary<string, LanguageInfo> ByCode =
        All.ToDictionary(l => l.Code, StringComparer.Ordinal);

    // Lookup keys are lower-case with '-' folded to '_'.
    private static readonly Dictionary<string, string> Lookup = BuildLookup();

    private static Dictionary<string, string> BuildLookup()
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var l in All)
        {
            d[Key(l.Code)] = l.Code;
            d[Key(l.Iso639_1)] = l.Code;
            d[Key(l.Iso639_3)] = l.Code;
        }
        foreach (var (alias, code) in ExtraAliases)
            d[Key(alias)] = code;
        return d;
    }

    private static string Key(string s) => s.Trim().Replace('-', '_').ToLowerInvariant();

    /// <summary>The 50 canonical codes, sorted.</summary>
    public static IReadOnlyList<string> Codes { get; } = All.Select(l => l.Code).ToArray();

    /// <summary>True when <paramref name="code"/> is a canonical code (exact spelling).</summary>
    public static bool IsCanonical(string code) => ByCode.ContainsKey(code);

    /// <summary>Registry entry for a canonical code or alias; throws like <see cref="Resolve"/>.</summary>
    public static LanguageInfo Get(string codeOrAlias) => ByCode[Resolve(codeOrAlias)];

    /// <summary>Canonical code for a code or alias, or false.</summary>
    public static bool TryResolve(string? codeOrAlias, out string code)
    {
        code = "";
        if (string.IsNullOrWhiteSpace(codeOrAlias)) return false;
        if (!Lookup.TryGetValue(Key(codeOrAlias), out var c)) return false;
        code = c;
        return true;
    }

    /// <summary>
    /// Canonical code (<c>eng_Latn</c>) for a canonical code or alias (<c>en</c>, <c>eng</c>, <c>ENG-latn</c>).
    /// Unknown input throws <see cref="UserInputException"/> with a "did you mean" suggestion.
    /// </summary>
    public static string Resolve(string codeOrAlias)
        => TryResolve(codeOrAlias, out var code) ? code : throw new UserInputException(Unknown(codeOrAlias));

    /// <summary>The one-line explanation for a code that does not resolve, with a suggestion when one is close.</summary>
    public static string Unknown(string? codeOrAlias)
    {
        var suggestion = Suggest(codeOrAlias ?? "");
        var hint = suggestion is null ? "" : $"; did you mean '{suggestion}'?";
        return $"unknown language '{codeOrAlias}'{hint} (use a code like eng_Latn or an ISO 639-1 alias like en; " +
               $"{All.Count} languages are known)";
    }

    /// <summary>Closest canonical code by edit distance over codes and aliases, or null when nothing is close.</summary>
    public static string? Suggest(string input)
    {
        var key = Key(input);
        if (key.Length == 0) return null;
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var (alias, code) in Lookup)
        {
            var d = Config.Suggest.EditDistance(key, alias);
            if (d < bestDistance || (d == bestDistance && best is not null && string.CompareOrdinal(code, best) < 0))
            {
                bestDistance = d;
                best = code;
            }
        }
        // Accept when at most about a third of the input has to change (at least 1, so 'eng_Ltn' -> eng_Latn).
        return bestDistance <= Math.Max(1, key.Length / 3) ? best : null;
    }

    /// <summary>The target-language tag token, a user-defined symbol of the SentencePiece model: <c>&lt;2eng_Latn&gt;</c>.</summary>
    public static string TagToken(string codeOrAlias) => $"<2{Resolve(codeOrAlias)}>";

    /// <summary>Task tags, user-defined symbols of the SentencePiece model.</summary>
    public const string MtTag = "<mt>", DaeTag = "<dae>", MaskToken = "<mask>";
}
