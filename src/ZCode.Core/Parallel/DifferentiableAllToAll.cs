using TorchSharp;
using static TorchSharp.torch;

namespace ZCode.Parallel;

/// <summary>
/// Equal-split all-to-all along dim 0 with gradients (expert parallelism): block j of the input goes to rank j and
/// block j of the output comes from rank j. Its adjoint is the same exchange (the gradient of output block j goes
/// back to rank j, into the block rank j sent), so backward is one more all-to-all on the incoming gradient.
/// Every rank of the group must call forward, and later backward, in the same order.
/// </summary>
public static class DifferentiableAllToAll
{
    /// <summary>All-to-all of <paramref name="x"/> over <paramref name="comm"/>; dim 0 must divide by the group size.
    /// A group of one returns <paramref name="x"/> itself (no copy, no autograd node).</summary>
    public static Tensor Apply(Tensor x, ICommunicator comm)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (comm.Size == 1) return x;
        if (x.dim() < 1 || x.shape[0] % comm.Size != 0)
            throw new ArgumentException($"all-to-all needs dim 0 divisible by the group size {comm.Size}, got [{string.Join(", ", x.shape)}]", nameof(x));
        return AllToAllFunction.apply(x, comm);
    }

    /// <summary>The autograd node. <see cref="torch.autograd.Function{T}"/> is a process-wide singleton (and ranks of
    /// the in-process test group share it across threads), so the communicator travels in the context, never a field.</summary>
    private sealed class AllToAllFunction : torch.autograd.SingleTensorFunction<AllToAllFunction>
    {
        private const string CommKey = "comm";

        public override string Name => "ZCodeAllToAll";

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            var comm = (ICommunicator)vars[1];
            ctx.save_data(CommKey, comm);
            return Exchange(x, comm);
        }

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
        {
            var comm = (ICommunicator)ctx.get_data(CommKey);
            return [Exchange(grad_output, comm), null!];
        }

        private static Tensor Exchange(Tensor x, ICommunicator comm)
        {
            var input = x.is_contiguous() ? x : x.contiguous();
            var output = empty_like(input);
            comm.AllToAll(input, output);
            return output;
        }
    }
}
