using System.Text;

namespace ZCode.Text;

/// <summary>Kinds of SentencePiece pieces (sentencepiece_model.proto, <c>SentencePiece.Type</c>).</summary>
public enum SpmPieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>One vocabulary entry of a SentencePiece model.</summary>
public readonly record struct SpmPiece(string Piece, float Score, SpmPieceType Type);

/// <summary>
/// The parts of a SentencePiece <c>ModelProto</c> that zcode needs (pieces, special ids, model type), read with a
/// minimal protobuf decoder so that ids and piece types come from the file itself.
/// Field numbers follow google/sentencepiece src/sentencepiece_model.proto.
/// </summary>
public sealed class SpmModelProto
{
    public List<SpmPiece> Pieces { get; } = new();
    /// <summary>1 unigram, 2 bpe, 3 word, 4 char (TrainerSpec.model_type; default unigram).</summary>
    public int ModelType { get; private set; } = 1;
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;

    /// <summary>Parses a serialized ModelProto; throws <see cref="InvalidDataException"/> on malformed input.</summary>
    public static SpmModelProto Parse(ReadOnlySpan<byte> data)
    {
        var m = new SpmModelProto();
        var r = new Reader(data);
        while (!r.End)
        {
            var (field, wire) = r.Tag();
            switch (field)
            {
                case 1 when wire == 2: m.Pieces.Add(ParsePiece(r.Bytes())); break;
                case 2 when wire == 2: m.ParseTrainerSpec(r.Bytes()); break;
                default: r.Skip(wire); break;
            }
        }
        if (m.Pieces.Count == 0) throw new InvalidDataException("no pieces (not a SentencePiece model)");
        return m;
    }

    /// <summary>Why zcode cannot tokenize with this model (its type, a missing special id), or null when it can.</summary>
    public string? Unsupported()
    {
        if (ModelType is not (1 or 2))
            return $"SentencePiece model type {ModelType} is not supported (train with --model_type=unigram)";
        foreach (var (name, id) in new[] { ("pad", PadId), ("bos", BosId), ("eos", EosId), ("unk", UnkId) })
            if (id < 0 || id >= Pieces.Count)
                return $"the model has no {name} id (train with --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3)";
        return null;
    }

    private static SpmPiece ParsePiece(ReadOnlySpan<byte> data)
    {
        var r = new Reader(data);
        string piece = "";
        float score = 0;
        var type = SpmPieceType.Normal;
        while (!r.End)
        {
            var (field, wire) = r.Tag();
            switch (field)
            {
                case 1 when wire == 2: piece = Encoding.UTF8.GetString(r.Bytes()); break;
                case 2 when wire == 5: score = r.Float(); break;
                case 3 when wire == 0: type = (SpmPieceType)(int)r.Varint(); break;
                default: r.Skip(wire); break;
            }
        }
        return new SpmPiece(piece, score, type);
    }

    private void ParseTrainerSpec(ReadOnlySpan<byte> data)
    {
        var r = new Reader(data);
        while (!r.End)
        {
            var (field, wire) = r.Tag();
            if (wire != 0) { r.Skip(wire); continue; }
            var v = (int)(long)r.Varint(); // int32 fields: negative values are sign-extended 64-bit varints
            switch (field)
            {
                case 3: ModelType = v; break;
                case 40: UnkId = v; break;
                case 41: BosId = v; break;
                case 42: EosId = v; break;
                case 43: PadId = v; break;
            }
        }
    }

    private ref struct Reader
    {
        private readonly ReadOnlySpan<byte> _data;
        private int _pos;

        public Reader(ReadOnlySpan<byte> data) { _data = data; _pos = 0; }

        public bool End => _pos >= _data.Length;

        public (int Field, int Wire) Tag()
        {
            var t = Varint();
            return ((int)(t >> 3), (int)(t & 7));
        }

        public ulong Varint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _data.Length) throw new InvalidDataException("truncated varint");
                var b = _data[_pos++];
                result |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return result;
            }
            throw new InvalidDataException("varint too long");
        }

        public ReadOnlySpan<byte> Bytes()
        {
            var len = (long)Varint();
            if (len < 0 || _pos + len > _data.Length) throw new InvalidDataException("truncated field");
            var s = _data.Slice(_pos, (int)len);
            _pos += (int)len;
            return s;
        }

        public float Float()
        {
            if (_pos + 4 > _data.Length) throw new InvalidDataException("truncated float");
            var f = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(_data.Slice(_pos, 4));
            _pos += 4;
            return f;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: _pos += 8; break;
                case 2: Bytes(); break;
                case 5: _pos += 4; break;
                default: throw new InvalidDataException($"unsupported wire type {wire}");
            }
            if (_pos > _data.Length) throw new InvalidDataException("truncated field");
        }
    }
}
