namespace ZCode.Config;

/// <summary>"Did you mean" suggestions: the closest candidate by edit distance, if it is close enough.</summary>
public static class Suggest
{
    /// <summary>
    /// The candidate nearest to <paramref name="word"/>, or null when none is plausibly a typo of it. Spelling
    /// variants that differ only in case, '_' or '-' (dModel, d-model) count as exact matches.
    /// </summary>
    public static string? Closest(string word, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        var normalizedWord = Normalize(word);
        foreach (var candidate in candidates)
        {
            var distance = Math.Min(EditDistance(word, candidate), EditDistance(normalizedWord, Normalize(candidate)));
            if (distance < bestDistance)
                (best, bestDistance) = (candidate, distance);
        }
        // A third of the word's length tolerates one typo in short keys and a few in long ones,
        // without suggesting unrelated keys ("foo" -> "top_k").
        return bestDistance <= Math.Max(1, word.Length / 3) ? best : null;
    }

    /// <summary>
    /// Levenshtein distance (insertions, deletions, substitutions) that also counts swapping two adjacent letters
    /// as one edit (optimal string alignment), since "modle" for "model" is one typo, not two. Case-sensitive.
    /// </summary>
    public static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
            d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++)
            d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(d[i - 1, j - 1] + cost, Math.Min(d[i - 1, j], d[i, j - 1]) + 1);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }

    private static string Normalize(string s) => s.Replace("_", "").Replace("-", "").ToLowerInvariant();
}
