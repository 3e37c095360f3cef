using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ZCode.Checkpoints;

/// <summary>
/// Names TorchSharp's AdamW state by parameter name. <c>state_dict()</c> returns live <see cref="AdamW.State"/>
/// objects (notes/torchsharp.md §4) in parameter-group order, so pairing them with the groups' parameters gives
/// each parameter's exp_avg / exp_avg_sq / step, which can then be written and overwritten in place.
/// </summary>
public static class OptimizerStates
{
    public static Dictionary<string, AdamW.State> ByName(AdamW optimizer, nn.Module model)
    {
        var names = model.named_parameters().ToDictionary(p => p.parameter.Handle, p => p.name);
        var parameters = optimizer.ParamGroups.Cast<AdamW.ParamGroup>().SelectMany(g => g.Parameters).ToList();
        var states = optimizer.state_dict().State;
        if (states.Count != parameters.Count)
            throw new InvalidOperationException($"optimizer has {states.Count} state entries for {parameters.Count} parameters");
        var result = new Dictionary<string, AdamW.State>(StringComparer.Ordinal);
        for (int i = 0; i < parameters.Count; i++)
        {
            var state = (AdamW.State)states[i];
            if (!names.TryGetValue(parameters[i].Handle, out var name))
                throw new InvalidOperationException("optimizer holds a parameter that is not in the model");
            if (!state.exp_avg.shape.SequenceEqual(parameters[i].shape))
                throw new InvalidOperationException($"optimizer state order does not match parameter {name}");
            result[name] = state;
        }
        return result;
    }
}
