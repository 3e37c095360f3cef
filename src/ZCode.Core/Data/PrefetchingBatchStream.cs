using System.Collections.Concurrent;

namespace ZCode.Data;

/// <summary>
/// Runs an <see cref="IBatchStream"/> on a background thread, keeping up to <c>capacity</c> batches ready (bounded, so
/// memory stays small), so batch building (sampling, DAE noise, collation) overlaps the training step. The stream of
/// batches is exactly the inner one's. <see cref="State"/> is the inner state right after the last batch handed out
/// (recorded by the producer with each batch), so checkpoints stay exact whatever the read-ahead; setting it stops
/// the producer, discards what was read ahead, restores the inner stream and restarts.
/// </summary>
public sealed class PrefetchingBatchStream : IBatchStream, IDisposable
{
    private readonly IBatchStream _inner;
    private readonly int _capacity;
    private BlockingCollection<(Batch Batch, SamplerState After)> _queue = null!;
    private CancellationTokenSource _cancel = null!;
    private Task _producer = Task.CompletedTask;
    private Exception? _error;
    private SamplerState _consumed;

    public PrefetchingBatchStream(IBatchStream inner, int capacity = 4)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "must be positive");
        _inner = inner;
        _capacity = capacity;
        _consumed = inner.State;
        Start();
    }

    public Batch Next()
    {
        if (_queue.TryTake(out var item, Timeout.Infinite))
        {
            _consumed = item.After;
            return item.Batch;
        }
        // The producer only completes the queue when it failed (the stream is endless).
        throw new InvalidOperationException($"batch producer failed: {_error?.Message}", _error);
    }

    public SamplerState State
    {
        get => _consumed;
        set
        {
            Stop();
            _inner.State = value;
            _consumed = _inner.State;
            Start();
        }
    }

    private void Start()
    {
        _queue = new BlockingCollection<(Batch, SamplerState)>(_capacity);
        _cancel = new CancellationTokenSource();
        _error = null;
        var queue = _queue;
        var token = _cancel.Token;
        _producer = Task.Factory.StartNew(() =>
        {
            try
            {
                while (!token.IsCancellationRequested)
                {
                    var batch = _inner.Next();
                    queue.Add((batch, _inner.State), token);
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e)
            {
                _error = e;
                queue.CompleteAdding();
            }
        }, TaskCreationOptions.LongRunning);
    }

    private void Stop()
    {
        _cancel.Cancel();
        try { _producer.Wait(); } catch (AggregateException) { }
        _cancel.Dispose();
        _queue.Dispose();
    }

    public void Dispose() => Stop();
}
