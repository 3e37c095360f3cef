using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>A group of one process: reductions are the identity, gathers and scatters are copies.</summary>
internal sealed class SelfCommunicator : ICommunicator
{
    public int Rank => 0;
    public int Size => 1;
    public string Backend => "local";

    public void AllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum) { }

    public void Broadcast(Tensor tensor, int root)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), "a group of one has only rank 0");
    }

    public void AllGather(Tensor input, Tensor output) => Copy(input, output);
    public void ReduceScatter(Tensor input, Tensor output, ReduceOp op = ReduceOp.Sum) => Copy(input, output);
    public void AllToAll(Tensor input, Tensor output) => Copy(input, output);
    public void AllToAllV(Tensor input, long[] sendRows, Tensor output, long[] recvRows) => Copy(input, output);
    public void Barrier() { }
    public ICommunicator Split(int color, int key) => new SelfCommunicator();
    public void Dispose() { }

    private static void Copy(Tensor input, Tensor output)
    {
        if (input.numel() != output.numel())
            throw new ArgumentException($"a group of one copies input to output: {input.numel()} vs {output.numel()} elements");
        if (input.Handle != output.Handle) output.view(-1).copy_(input.reshape(-1));
    }
}
