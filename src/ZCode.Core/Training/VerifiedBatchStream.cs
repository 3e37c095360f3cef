using System.Diagnostics;
using Serilog;
using ZCode.Data;
using ZCode.Data.Shards;
using ZCode.Parallel;

namespace ZCode.Training;

/// <summary>
/// Holds a run's first batch back until rank 0's check of the token shards (<see cref="ShardVerifier.Check"/>, on a
/// background thread since the data was opened) has finished, so no rank trains a step, or saves a checkpoint, on ids
/// that differ from <c>index.json</c>. The outcome reaches every rank through one broadcast, so all of them stop with
/// the same error naming the damaged file. Batches built in the meantime are only read ahead, never trained on.
/// </summary>
internal sealed class VerifiedBatchStream(IBatchStream inner, ICommunicator world, ShardVerifier verifier,
    IReadOnlyList<string> files, Task<ShardCheckResult>? check, ILogger log) : IBatchStream
{
    private bool verified;

    public Batch Next()
    {
        if (!verified)
        {
            WaitForCheck();
            verified = true;
        }
        return inner.Next();
    }

    public SamplerState State
    {
        get => inner.State;
        set => inner.State = value;
    }

    private void WaitForCheck()
    {
        var clock = Stopwatch.StartNew();
        var result = check?.GetAwaiter().GetResult();
        long damaged = HostCollectives.Broadcast(world, result?.Damaged ?? -1, 0);
        if (damaged >= 0)
            throw new InvalidDataException(ShardVerifier.ContentDamaged(Path.Combine(verifier.Directory, files[(int)damaged])));
        if (result is not null)
            log.Information("data: {Files} token shards ({MiB:F0} MiB) match index.json, checked in {Seconds:F2} s; " +
                            "the first step waited {Wait:F2} s for it", files.Count, result.Bytes / 1048576.0, result.Seconds,
                clock.Elapsed.TotalSeconds);
    }
}
