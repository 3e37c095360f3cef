using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ZCode.Model.Moe;

/// <summary>
/// The experts on the kept tokens (no capacity padding; in 16 bits each expert's rows rounded up to a multiple of
/// 16), for a layer that holds all its experts.
/// </summary>
public sealed partial class MoeLayer
{
    /// <summary>
    /// Dispatch, experts and combine for a routed [S, d] input; returns [S, d]. Uses the packed path: the kept
    /// token-slots sorted by expert, one matmul pair per expert on its own rows (in 16 bits rounded up to a multiple of
    /// 16 rows: <see cref="SegmentRowMultiple"/>). The padded [E, C, d] path computes
    /// every capacity slot (E*C = k*factor*S rows: 25% more than S*k at factor 1.25, twice as many at the eval factor
    /// 2.0 or when min_capacity pads a small decoding batch) and reads every expert's weights even when it got no
    /// token; the packed path does neither. The [E, C, d] path (<see cref="Dispatch"/>, <see cref="ExpertForward"/>,
    /// <see cref="Combine"/>, <see cref="ExchangeAndRunExperts"/>) stays the path of expert parallelism, whose
    /// all-to-alls exchange fixed-size buffers, and of accelerators, where this path's host-side split sizes would
    /// make every forward wait for the device. Only for a layer that holds all its experts.
    /// </summary>
    public Tensor RunExperts(Tensor x2, MoeRoutingResult r) => RunExperts(x2, r, SegmentRowMultiple(x2.dtype));

    /// <summary><see cref="RunExperts(Tensor, MoeRoutingResult)"/> with each expert's rows padded to a multiple of
    /// <paramref name="rowMultiple"/> (1 = unpadded; see <see cref="SegmentRowMultiple"/>).</summary>
    internal Tensor RunExperts(Tensor x2, MoeRoutingResult r, int rowMultiple)
    {
        if (LocalExperts != Experts)
            throw new InvalidOperationException("the packed expert path needs all experts on this rank; use ExchangeAndRunExperts");
        long s = x2.shape[0];
        var plan = MoeDispatchPlan.From(r);
        // The split sizes below. On CPU the counts are host memory already: reading them waits for no device, so it is
        // not counted as a transfer (forward uses this path on CPU only; elsewhere the read is a synchronisation).
        var counts = x2.device_type == DeviceType.CPU
            ? r.TokensPerExpert.contiguous().data<long>().ToArray()
            : r.TokensPerExpertCounts;
        long kept = counts.Sum();
        if (kept == 0) return zeros_like(x2);
        var dispatch = ZCode.Runtime.StepProfile.Measure("moe dispatch/combine");
        // Rows = expert * C + position orders the kept slots by expert, then by position within the expert; the slots
        // that are not kept point at the spare row E * C and sort last, where they are cut off.
        var order = plan.Rows.argsort().narrow(0, 0, kept);
        var tokens = plan.Tokens.index_select(0, order);
        var gates = plan.Gates.index_select(0, order);
        var dtype = x2.dtype;
        // Expert dropout uses the kept slots' rows of the [E, C, ffn] mask the padded path draws, so both paths (and
        // expert-parallel ranks, which use the padded one) drop the same units.
        Tensor? noise = null;
        if (training && expertDropout > 0)
            noise = CounterDropout.Rows(new[] { (long)Experts, r.Capacity, (long)FfnDim }, plan.Rows.index_select(0, order),
                expertDropout, dtype, x2.device);
        var input = x2;
        var rowCounts = counts;
        if (rowMultiple > 1)
            (input, tokens, gates, noise, rowCounts) = PadSegments(x2, tokens, gates, noise, counts, kept, rowMultiple);
        var segments = input.index_select(0, tokens).split(rowCounts);
        var noiseSegments = noise?.split(rowCounts);
        // unbind, not select: its backward stacks the per-expert gradients into one [E, ...] tensor, where E selects
        // would each materialise a full-size zero gradient.
        var w1s = Cast(w1, dtype).unbind(0);
        var b1s = Cast(b1, dtype).unbind(0);
        var w2s = Cast(w2, dtype).unbind(0);
        var b2s = Cast(b2, dtype).unbind(0);
        dispatch.Dispose();
        var outputs = new List<Tensor>(Experts);
        using (ZCode.Runtime.StepProfile.Measure("moe experts"))
            for (int e = 0; e < Experts; e++)
            {
                if (rowCounts[e] == 0) continue;
                var hidden = functional.relu(segments[e].matmul(w1s[e]).add_(b1s[e]));
                if (noiseSegments is not null) hidden = hidden * noiseSegments[e];
                outputs.Add(hidden.matmul(w2s[e]).add_(b2s[e]));
            }
        using var combine = ZCode.Runtime.StepProfile.Measure("moe dispatch/combine");
        var weighted = cat(outputs, 0) * gates.to(dtype).unsqueeze(1);
        // Padding rows (when there are any) carry token S, a spare output row that is cut off.
        long outRows = input.shape[0];
        var combined = zeros(new long[] { outRows, x2.shape[1] }, dtype, x2.device).index_add(0, tokens, weighted, 1);
        return outRows == s ? combined : combined.narrow(0, 0, s);
    }

    /// <summary>
    /// Rows each expert's segment is rounded up to, or 1 for none. oneDNN, which runs LibTorch's 16-bit CPU matmuls,
    /// builds (JIT-compiles) a kernel for every new matrix shape and keeps 1,024 in its cache: the per-expert row counts
    /// change every step, so unpadded segments make it compile a few hundred kernels a step on the calling thread
    /// (0.2-0.4 ms each, 7% of the main thread at the shapes of bench/train-vs-peer.sh) and evict the rest of the model's.
    /// Rounded to 16 rows, an expert's matmuls take one of S*k/16 shapes, which stay cached. fp32 CPU matmuls go to
    /// MKL, which compiles nothing: they run unpadded, so fp32 results are those of the unpadded layer bit for bit.
    /// </summary>
    internal static int SegmentRowMultiple(ScalarType dtype) => dtype == ScalarType.Float32 ? 1 : 16;

    /// <summary>
    /// Pads every expert's run of the <paramref name="kept"/> sorted kept slots to a multiple of
    /// <paramref name="multiple"/> rows. Padding rows read a zero row appended to the input (row S), have gate 0 and
    /// scatter into a spare output row S, so they change no output and give every weight a gradient of exactly zero
    /// from their rows; their dropout multipliers are 1.
    /// </summary>
    private static (Tensor Input, Tensor Tokens, Tensor Gates, Tensor? Noise, long[] Counts) PadSegments(Tensor x2,
        Tensor tokens, Tensor gates, Tensor? noise, long[] counts, long kept, int multiple)
    {
        long s = x2.shape[0];
        var padded = counts.Select(c => (c + multiple - 1) / multiple * multiple).ToArray();
        long rows = padded.Sum();
        if (rows == kept) return (x2, tokens, gates, noise, counts);
        // Source of each padded row: its kept slot, or slot `kept`, an extra entry appended to each per-slot tensor.
        var source = new long[rows];
        long next = 0, at = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            for (long i = 0; i < counts[e]; i++) source[at++] = next++;
            for (long i = counts[e]; i < padded[e]; i++) source[at++] = kept;
        }
        var device = x2.device;
        var index = tensor(source, device: device);
        var input = cat([x2, zeros(new long[] { 1, x2.shape[1] }, x2.dtype, device)], 0);
        var paddedTokens = cat([tokens, tensor(new[] { s }, device: device)], 0).index_select(0, index);
        var paddedGates = cat([gates, zeros(1, gates.dtype, device)], 0).index_select(0, index);
        var paddedNoise = noise is null ? null
            : cat([noise, ones(new long[] { 1, noise.shape[1] }, noise.dtype, device)], 0).index_select(0, index);
        return (input, paddedTokens, paddedGates, paddedNoise, padded);
    }
}
