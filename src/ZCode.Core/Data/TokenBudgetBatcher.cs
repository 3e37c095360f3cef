namespace ZCode.Data;

/// <summary>An endless, deterministic stream of training batches whose position can be saved and restored.</summary>
public interface IBatchStream
{
    /// <summary>The next batch (never ends).</summary>
    Batch Next();

    /// <summary>Position of the stream: saving it and assigning it later (to a stream built from the same data and
    /// seed) continues with exactly the batches that would have come next.</summary>
    SamplerState State { get; set; }
}

/// <summary>
/// Serializable position of a <see cref="TokenBudgetBatcher"/> (System.Text.Json round-trips it). The pool fields
/// describe the moment the current pool of batches was drawn, and <see cref="PoolPosition"/> how many of its
/// batches were handed out, so a restore redraws the same pool and skips what was consumed.
/// </summary>
public sealed class SamplerState
{
    /// <summary>Format version of this object.</summary>
    public int Version { get; set; } = 1;
    /// <summary>train.seed of the stream.</summary>
    public long Seed { get; set; }
    /// <summary>Direction names in order (checked on restore).</summary>
    public string[] Directions { get; set; } = Array.Empty<string>();
    /// <summary>Sampling RNG state when the current pool was drawn.</summary>
    public long[] Rng { get; set; } = Array.Empty<long>();
    /// <summary>Per direction: epoch (number of completed passes) when the current pool was drawn.</summary>
    public long[] Epochs { get; set; } = Array.Empty<long>();
    /// <summary>Per direction: position in the epoch's permutation when the current pool was drawn.</summary>
    public long[] Cursors { get; set; } = Array.Empty<long>();
    /// <summary>Batches of the current pool already returned (0 = draw a new pool next).</summary>
    public int PoolPosition { get; set; }
    /// <summary>Batches returned since the start of the stream.</summary>
    public long BatchesProduced { get; set; }
    /// <summary>Examples returned since the start of the stream.</summary>
    public long ExamplesProduced { get; set; }
}

/// <summary>
/// Token-budget batching with length bucketing over several directions:
/// 1. draw a pool of examples worth about <c>poolBatches × tokensPerBatch</c> padded tokens: each draw picks a
///    direction by temperature sampling, then that direction's next example in a per-epoch random permutation
///    (every example once per epoch);
/// 2. sort the pool by length (max of source and target), cut it into batches with B × max(Ls, Lt) ≤ budget;
/// 3. shuffle the batch order and hand the batches out; repeat forever.
/// Everything derives from the seed; <see cref="State"/> saves and restores the exact position.
/// </summary>
public sealed class TokenBudgetBatcher : IBatchStream
{
    private readonly IReadOnlyList<IExampleSet> _sets;
    private readonly TemperatureSampler _sampler;
    private readonly int _tokensPerBatch;
    private readonly int _padId;
    private readonly int _bosId;
    private readonly long _seed;
    private readonly int _poolBatches;
    private readonly DeterministicRandom _rng;
    private readonly long[] _epochs;
    private readonly long[] _cursors;
    private readonly int[]?[] _permutations;
    private readonly long[] _permutationEpochs;

    // Current pool: batches of (set, index) and the state it was drawn from.
    private List<(int Set, int Index, long Epoch)[]>? _pool;
    private int _poolPosition;
    private long[] _poolRng;
    private long[] _poolEpochs;
    private long[] _poolCursors;
    private long _batchesProduced;
    private long _examplesProduced;

    /// <param name="sets">Directions to sample from (each with at least one example).</param>
    /// <param name="temperature">Sampling temperature T over directions (p_i ∝ n_i^(1/T)).</param>
    /// <param name="tokensPerBatch">Budget: B × max(Ls, Lt) ≤ tokensPerBatch; must hold the longest example.</param>
    /// <param name="padId">Padding id.</param>
    /// <param name="bosId">First decoder input id.</param>
    /// <param name="seed">train.seed.</param>
    /// <param name="poolBatches">Pool size in batches for length bucketing (larger: less padding, less mixing).</param>
    /// <param name="probabilities">Sampling probability per set (e.g. <see cref="TaskMixture"/>); null: temperature over counts.</param>
    public TokenBudgetBatcher(IReadOnlyList<IExampleSet> sets, double temperature, int tokensPerBatch, int padId,
        int bosId, long seed, int poolBatches = 100, IReadOnlyList<double>? probabilities = null)
    {
        ArgumentNullException.ThrowIfNull(sets);
        if (sets.Count == 0) throw new ArgumentException("no directions to sample from", nameof(sets));
        foreach (var s in sets)
            if (s.Count == 0) throw new ArgumentException($"direction {s.Name} has no examples", nameof(sets));
        if (sets.Select(s => s.Name).Distinct().Count() != sets.Count)
            throw new ArgumentException("direction names must be unique", nameof(sets));
        if (tokensPerBatch < 1) throw new ArgumentOutOfRangeException(nameof(tokensPerBatch), tokensPerBatch, "must be positive");
        if (poolBatches < 1) throw new ArgumentOutOfRangeException(nameof(poolBatches), poolBatches, "must be positive");
        _sets = sets;
        _sampler = probabilities is null
            ? new TemperatureSampler(sets.Select(s => (long)s.Count).ToArray(), temperature)
            : new TemperatureSampler(probabilities);
        if (_sampler.Probabilities.Count != sets.Count)
            throw new ArgumentException("one probability per set", nameof(probabilities));
        _tokensPerBatch = tokensPerBatch;
        _padId = padId;
        _bosId = bosId;
        _seed = seed;
        _poolBatches = poolBatches;
        _rng = new DeterministicRandom(DeterministicRandom.DeriveSeed(seed, 0x6D74 /* "mt" */));
        _epochs = new long[sets.Count];
        _cursors = new long[sets.Count];
        _permutations = new int[]?[sets.Count];
        _permutationEpochs = new long[sets.Count];
        _poolRng = _rng.State;
        _poolEpochs = (long[])_epochs.Clone();
        _poolCursors = (long[])_cursors.Clone();
    }

    /// <summary>Sampling probability of each direction, in the order given.</summary>
    public IReadOnlyList<double> Probabilities => _sampler.Probabilities;

    public long BatchesProduced => _batchesProduced;

    public Batch Next()
    {
        if (_pool is null || _poolPosition >= _pool.Count) DrawPool();
        var rows = _pool![_poolPosition++];
        _batchesProduced++;
        _examplesProduced += rows.Length;
        var examples = new Example[rows.Length];
        for (var i = 0; i < rows.Length; i++) examples[i] = _sets[rows[i].Set].Get(rows[i].Index, rows[i].Epoch);
        return Batch.Collate(examples, _padId, _bosId);
    }

    /// <summary>The endless batch stream as an enumerable (each step calls <see cref="Next"/>).</summary>
    public IEnumerable<Batch> Batches()
    {
        while (true) yield return Next();
    }

    public SamplerState State
    {
        get
        {
            var inPool = _pool is not null && _poolPosition < _pool.Count;
            return new SamplerState
            {
                Seed = _seed,
                Directions = _sets.Select(s => s.Name).ToArray(),
                Rng = inPool ? (long[])_poolRng.Clone() : _rng.State,
                Epochs = (long[])(inPool ? _poolEpochs : _epochs).Clone(),
                Cursors = (long[])(inPool ? _poolCursors : _cursors).Clone(),
                PoolPosition = inPool ? _poolPosition : 0,
                BatchesProduced = _batchesProduced,
                ExamplesProduced = _examplesProduced,
            };
        }
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            var names = _sets.Select(s => s.Name).ToArray();
            if (value.Version != 1)
                throw new UserInputException($"data sampler state version {value.Version} is not supported (expected 1)");
            if (!value.Directions.SequenceEqual(names))
                throw new UserInputException(
                    $"data sampler state was saved for directions [{string.Join(", ", value.Directions)}] but the " +
                    $"data configuration gives [{string.Join(", ", names)}]; the data stream cannot be resumed exactly");
            if (value.Seed != _seed)
                throw new UserInputException(
                    $"data sampler state was saved with train.seed {value.Seed} but train.seed is {_seed}");
            if (value.Epochs.Length != names.Length || value.Cursors.Length != names.Length || value.Rng.Length != 4)
                throw new UserInputException("data sampler state is malformed (array lengths)");
            for (var i = 0; i < names.Length; i++)
                if (value.Cursors[i] < 0 || value.Cursors[i] > _sets[i].Count || value.Epochs[i] < 0)
                    throw new UserInputException(
                        $"data sampler state does not fit direction {names[i]} ({_sets[i].Count} examples now)");

            _rng.State = value.Rng;
            Array.Copy(value.Epochs, _epochs, _epochs.Length);
            Array.Copy(value.Cursors, _cursors, _cursors.Length);
            _batchesProduced = value.BatchesProduced;
            _examplesProduced = value.ExamplesProduced;
            _pool = null;
            _poolPosition = 0;
            _poolRng = _rng.State;
            _poolEpochs = (long[])_epochs.Clone();
            _poolCursors = (long[])_cursors.Clone();
            if (value.PoolPosition > 0)
            {
                DrawPool();
                if (value.PoolPosition > _pool!.Count)
                    throw new UserInputException("data sampler state is malformed (pool position past the pool)");
                _poolPosition = value.PoolPosition;
            }
        }
    }

    private void DrawPool()
    {
        _poolRng = _rng.State;
        _poolEpochs = (long[])_epochs.Clone();
        _poolCursors = (long[])_cursors.Clone();

        var target = (long)_poolBatches * _tokensPerBatch;
        var drawn = new List<(int Set, int Index, long Epoch, int Length)>();
        long tokens = 0;
        while (tokens < target)
        {
            var d = _sampler.Sample(_rng);
            var index = NextIndex(d);
            var epoch = _epochs[d];
            var set = _sets[d];
            var length = Math.Max(set.SourceLength(index), set.TargetLength(index));
            if (length > _tokensPerBatch)
                throw new InvalidOperationException(
                    $"{set.Name}: example of length {length} exceeds the token budget {_tokensPerBatch}");
            drawn.Add((d, index, epoch, length));
            tokens += length;
        }
        // Stable sort by length (draw order breaks ties), then cut by the budget.
        var order = Enumerable.Range(0, drawn.Count).OrderBy(i => drawn[i].Length).ThenBy(i => i).ToArray();
        var batches = CutByBudget(order.Select(i => drawn[i].Length).ToArray(), _tokensPerBatch)
            .Select(range => order[range].Select(i => (drawn[i].Set, drawn[i].Index, drawn[i].Epoch)).ToArray())
            .ToList();
        _rng.Shuffle(batches);
        _pool = batches;
        _poolPosition = 0;
    }

    private int NextIndex(int set)
    {
        var n = _sets[set].Count;
        if (_cursors[set] >= n)
        {
            _epochs[set]++;
            _cursors[set] = 0;
        }
        var perm = _permutations[set];
        if (perm is null || _permutationEpochs[set] != _epochs[set])
        {
            perm ??= new int[n];
            for (var i = 0; i < n; i++) perm[i] = i;
            new DeterministicRandom(DeterministicRandom.DeriveSeed(_seed, 0x7065726D /* "perm" */, set, _epochs[set]))
                .Shuffle(perm.AsSpan());
            _permutations[set] = perm;
            _permutationEpochs[set] = _epochs[set];
        }
        return perm[_cursors[set]++];
    }

    /// <summary>
    /// Cuts a sequence of lengths sorted ascending into consecutive ranges with count × max ≤ budget
    /// (a single over-long item still gets its own range).
    /// </summary>
    public static List<Range> CutByBudget(IReadOnlyList<int> sortedLengths, int budget)
    {
        var ranges = new List<Range>();
        var start = 0;
        var max = 0;
        for (var i = 0; i < sortedLengths.Count; i++)
        {
            var m = Math.Max(max, sortedLengths[i]);
            if (i > start && (long)(i - start + 1) * m > budget)
            {
                ranges.Add(start..i);
                start = i;
                m = sortedLengths[i];
            }
            max = m;
        }
        if (start < sortedLengths.Count) ranges.Add(start..sortedLengths.Count);
        return ranges;
    }

    /// <summary>
    /// Deterministic batches covering every example of <paramref name="set"/> once (for validation): sorted by
    /// length, cut by the budget, in that order.
    /// </summary>
    public static IReadOnlyList<Batch> Sequential(IExampleSet set, int tokensPerBatch, int padId, int bosId)
    {
        var lengths = Enumerable.Range(0, set.Count)
            .Select(i => (Index: i, Length: Math.Max(set.SourceLength(i), set.TargetLength(i))))
            .OrderBy(x => x.Length).ThenBy(x => x.Index).ToArray();
        return CutByBudget(lengths.Select(x => x.Length).ToArray(), tokensPerBatch)
            .Select(r => Batch.Collate(lengths[r].Select(x => set.Get(x.Index)).ToArray(), padId, bosId))
            .ToList();
    }
}
