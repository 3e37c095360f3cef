using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ZCode.Model.Moe;

/// <summary>
/// The experts on exactly the kept tokens (no capacity padding), for a layer that holds all its experts.
/// </summary>
public sealed partial class MoeLayer
{
    /// <summary>
    /// Dispatch, experts and combine for a routed [S, d] input; returns [S, d]. Uses the packed path: the kept
    /// token-slots sorted by expert, one matmul pair per expert on its own rows. The padded [E, C, d] path computes
    /// every capacity slot (E*C = k*factor*S rows: 25% more than S*k at factor 1.25, twice as many at the eval factor
    /// 2.0 or when min_capacity pads a small decoding batch) and reads every expert's weights even when it got no
    /// token; the packed path does neither. The [E, C, d] path (<see cref="Dispatch"/>, <see cref="ExpertForward"/>,
    /// <see cref="Combine"/>, <see cref="ExchangeAndRunExperts"/>) stays the path of expert parallelism, whose
    /// all-to-alls exchange fixed-size buffers, and of accelerators, where this path's host-side split sizes would
    /// make every forward wait for the device. Only for a layer that holds all its experts.
    /// </summary>
    public Tensor RunExperts(Tensor x2, MoeRoutingResult r)
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
        var segments = x2.index_select(0, tokens).split(counts);
        // unbind, not select: its backward stacks the per-expert gradients into one [E, ...] tensor, where E selects
        // would each materialise a full-size zero gradient.
        var w1s = Cast(w1, dtype).unbind(0);
        var b1s = Cast(b1, dtype).unbind(0);
        var w2s = Cast(w2, dtype).unbind(0);
        var b2s = Cast(b2, dtype).unbind(0);
        // Expert dropout uses the kept slots' rows of the [E, C, ffn] mask the padded path draws, so both paths (and
        // expert-parallel ranks, which use the padded one) drop the same units.
        Tensor[]? noise = null;
        if (training && expertDropout > 0)
            noise = CounterDropout.Rows(new[] { (long)Experts, r.Capacity, (long)FfnDim }, plan.Rows.index_select(0, order),
                expertDropout, dtype, x2.device).split(counts);
        dispatch.Dispose();
        var outputs = new List<Tensor>(Experts);
        using (ZCode.Runtime.StepProfile.Measure("moe experts"))
            for (int e = 0; e < Experts; e++)
            {
                if (counts[e] == 0) continue;
                var hidden = functional.relu(segments[e].matmul(w1s[e]).add_(b1s[e]));
                if (noise is not null) hidden = hidden * noise[e];
                outputs.Add(hidden.matmul(w2s[e]).add_(b2s[e]));
            }
        using var combine = ZCode.Runtime.StepProfile.Measure("moe dispatch/combine");
        var weighted = cat(outputs, 0) * gates.to(dtype).unsqueeze(1);
        return zeros(new long[] { s, x2.shape[1] }, dtype, x2.device).index_add(0, tokens, weighted, 1);
    }
}
