using Microsoft.ML.Tokenizers;

namespace ZCode.Text;

/// <summary>
/// SentencePiece model (trained by <c>spm_train</c>) loaded with Microsoft.ML.Tokenizers. Encodes without BOS/EOS;
/// callers add tags and EOS by id. Special ids (pad/unk/bos/eos) and piece types are read from the model file.
/// </summary>
/// <remarks>
/// Parity with <c>spm_encode --output_format=id</c>: Microsoft.ML.Tokenizers 2.0.1 emits one &lt;unk&gt; per unknown
/// character where SentencePiece merges a run of unknown characters into one &lt;unk&gt;; <see cref="Encode"/> merges
/// such runs, which makes every line of data-samples/ identical to spm_encode. Remaining known difference: ties
/// between equal-score segmentations (10 of 64,847 lines of the multilingual corpus data-samples/ was drawn from,
/// all in languages the sample model was not trained on).
/// </remarks>
public sealed class SpmTokenizer
{
    private readonly SentencePieceTokenizer _tokenizer;
    private readonly Dictionary<string, int> _pieceToId;

    private SpmTokenizer(string path, SentencePieceTokenizer tokenizer, SpmModelProto proto)
    {
        ModelPath = path;
        _tokenizer = tokenizer;
        Proto = proto;
        _pieceToId = new Dictionary<string, int>(VocabSize, StringComparer.Ordinal);
        for (var i = 0; i < VocabSize; i++)
            _pieceToId.TryAdd(proto.Pieces[i].Piece, i);
    }

    /// <summary>Path the model was loaded from (full path).</summary>
    public string ModelPath { get; }

    /// <summary>The parsed model file (pieces with scores and types, trainer ids).</summary>
    public SpmModelProto Proto { get; }

    public int VocabSize => Proto.Pieces.Count;
    public int PadId => Proto.PadId;
    public int UnkId => Proto.UnkId;
    public int BosId => Proto.BosId;
    public int EosId => Proto.EosId;

    /// <summary>
    /// Loads a SentencePiece model. A missing or unreadable file, a non-unigram/BPE model or a model without
    /// pad/bos/eos ids is a <see cref="UserInputException"/> naming the path.
    /// </summary>
    public static SpmTokenizer Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw UserInputException.At(full, 0, 0,
                "SentencePiece model not found (train one with 'zcode vocab train' or scripts/make-data-samples)");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(full); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserInputException.At(full, 0, 0, $"cannot read SentencePiece model: {e.Message}");
        }

        SpmModelProto proto;
        try { proto = SpmModelProto.Parse(bytes); }
        catch (InvalidDataException e)
        {
            throw UserInputException.At(full, 0, 0, $"not a SentencePiece model ({e.Message})");
        }
        if (proto.Unsupported() is { } unsupported)
            throw UserInputException.At(full, 0, 0, unsupported);

        SentencePieceTokenizer tokenizer;
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            tokenizer = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw UserInputException.At(full, 0, 0, $"cannot load SentencePiece model: {e.Message}");
        }
        return new SpmTokenizer(full, tokenizer, proto);
    }

    /// <summary>Token ids of <paramref name="text"/> (normalized as the model says), without BOS/EOS.</summary>
    public int[] Encode(string text)
    {
        var ids = _tokenizer.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false,
            considerPreTokenization: true, considerNormalization: true);
        // SentencePiece merges a run of unknown pieces into one <unk>; Microsoft.ML.Tokenizers does not.
        var n = ids.Count;
        var runs = 0;
        for (var i = 1; i < n; i++)
            if (ids[i] == UnkId && ids[i - 1] == UnkId) runs++;
        var result = new int[n - runs];
        var k = 0;
        for (var i = 0; i < n; i++)
        {
            if (i > 0 && ids[i] == UnkId && ids[i - 1] == UnkId) continue;
            result[k++] = ids[i];
        }
        return result;
    }

    /// <summary>
    /// Text of <paramref name="ids"/>. Control pieces (pad, bos, eos) are dropped, as <c>spm_decode</c> does;
    /// &lt;unk&gt; decodes to " ⁇ " (SentencePiece's unk surface); user-defined symbols decode to their text.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        var sb = new System.Text.StringBuilder();
        var segment = new List<int>();
        var first = true;
        void Flush()
        {
            if (segment.Count == 0) return;
            var text = _tokenizer.Decode(segment, considerSpecialTokens: false) ?? "";
            // Decode strips the dummy-prefix space of the segment's first piece; keep it inside the sentence.
            if (!first && segment.Count > 0 && _tokenizer.AddDummyPrefix && IdToToken(segment[0]).StartsWith('\u2581'))
                text = " " + text;
            sb.Append(text);
            first = false;
            segment.Clear();
        }
        foreach (var id in ids)
        {
            if (id < 0 || id >= VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary (0..{VocabSize - 1})");
            if (PieceType(id) == SpmPieceType.Control) continue;
            if (id == UnkId)
            {
                Flush();
                sb.Append(" \u2047 ");
                first = false;
                continue;
            }
            segment.Add(id);
        }
        Flush();
        return sb.ToString();
    }

    /// <summary>Id of a piece (e.g. a user-defined tag <c>&lt;2eng_Latn&gt;</c>); throws when the model lacks it.</summary>
    public int TokenToId(string piece)
    {
        if (_pieceToId.TryGetValue(piece, out var id)) return id;
        throw new KeyNotFoundException($"{ModelPath}: the SentencePiece model has no piece '{piece}'");
    }

    public bool TryTokenToId(string piece, out int id) => _pieceToId.TryGetValue(piece, out id);

    /// <summary>The piece string of an id.</summary>
    public string IdToToken(int id) => Proto.Pieces[id].Piece;

    /// <summary>Piece type of an id (normal, control, user-defined, ...).</summary>
    public SpmPieceType PieceType(int id) => Proto.Pieces[id].Type;

    /// <summary>
    /// Id of the target-language tag <c>&lt;2code&gt;</c> for a code or alias. Unknown languages and models without
    /// the tag are <see cref="UserInputException"/>s.
    /// </summary>
    public int LanguageTagId(string codeOrAlias)
    {
        var tag = Languages.TagToken(codeOrAlias);
        if (_pieceToId.TryGetValue(tag, out var id) && Proto.Pieces[id].Type == SpmPieceType.UserDefined) return id;
        throw UserInputException.At(ModelPath, 0, 0,
            $"the SentencePiece model has no user-defined symbol {tag} (retrain it with the language tags, " +
            "see scripts/make-data-samples)");
    }
}
