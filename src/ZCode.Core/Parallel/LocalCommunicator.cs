using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>The world of one process (backend <c>local</c>): every collective is the identity or a copy.</summary>
public sealed class LocalCommunicator : ICommunicator
{
    public int Rank => 0;
    public int Size => 1;
    public string Backend => "local";

    public Device Device => CPU;

    public void AllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum) { }

    public void Broadcast(Tensor tensor, int root)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), $"broadcast: root {root} is not a rank of a group of 1");
    }

    public void AllGather(Tensor input, Tensor output) => Copy("all-gather", input, output);

    public void ReduceScatter(Tensor input, Tensor output, ReduceOp op = ReduceOp.Sum) => Copy("reduce-scatter", input, output);

    public void AllToAll(Tensor input, Tensor output) => Copy("all-to-all", input, output);

    public void AllToAllV(Tensor input, long[] sendRows, Tensor output, long[] recvRows)
    {
        if (sendRows.Length != 1 || recvRows.Length != 1 || sendRows[0] != recvRows[0]
            || sendRows[0] != input.shape[0] || recvRows[0] != output.shape[0])
            throw new ArgumentException($"all-to-all-v: a group of 1 sends all {input.shape[0]} rows to itself; got send [{string.Join(", ", sendRows)}], receive [{string.Join(", ", recvRows)}]");
        Copy("all-to-all-v", input, output);
    }

    public void Barrier() { }

    public ICommunicator Split(int color, int key) => new LocalCommunicator();

    public void Dispose() { }

    private static void Copy(string op, Tensor input, Tensor output)
    {
        if (input.numel() != output.numel() || input.dtype != output.dtype)
            throw new ArgumentException($"{op}: input ({input.numel()} x {input.dtype}) and output ({output.numel()} x {output.dtype}) differ in a group of 1");
        if (input.Handle == output.Handle) return;
        output.view(-1).copy_(input.reshape(-1));
    }
}
