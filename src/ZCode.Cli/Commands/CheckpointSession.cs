using TorchSharp;
using ZCode.Checkpoints;
using ZCode.Runtime;
using ZCode.Text;

namespace ZCode.Cli.Commands;

/// <summary>A checkpoint opened for inference: the model in eval mode, its SentencePiece tokenizer, CPU threads set.</summary>
internal sealed record CheckpointSession(LoadedCheckpoint Checkpoint, SpmTokenizer Tokenizer)
{
    /// <param name="threads">CPU threads; 0 = the config's train.threads, else all cores.</param>
    /// <param name="device">auto | cpu | cuda[:N]; null = the checkpoint config's train.device.</param>
    /// <param name="dtype">fp32 | bf16; null = the checkpoint config's train.dtype.</param>
    /// <param name="weights">auto | ema | raw (<see cref="CheckpointReader.WeightChoices"/>).</param>
    public static CheckpointSession Open(string path, int threads = 0, string? device = null, string? dtype = null, string weights = "auto")
    {
        if (threads < 0) throw new UserInputException($"--threads must be >= 0, got {threads}");
        var ckpt = CheckpointReader.Load(path, weights);
        var cfg = ckpt.Config;
        torch.set_num_threads(threads > 0 ? threads : cfg.Train.Threads > 0 ? cfg.Train.Threads : Environment.ProcessorCount);
        var tokenizer = SpmTokenizer.Load(cfg.ResolvePath(cfg.Data.SpmModel));
        if (tokenizer.VocabSize > cfg.Model.VocabSize)
            throw new UserInputException($"{ckpt.Directory}: model.vocab_size {cfg.Model.VocabSize} is smaller than " +
                                         $"{tokenizer.ModelPath} ({tokenizer.VocabSize} pieces)");
        var target = ComputeDevice.Resolve(device ?? cfg.Train.Device, device is null ? "train.device" : "--device");
        ckpt.Model.ComputeDtype = ComputeDevice.Dtype(dtype is null ? cfg.Train.Dtype : ParseDtype(dtype), target);
        if (target.type != DeviceType.CPU)
            ckpt.Model.to(target);
        ckpt.Model.MoeExecution = ZCode.Model.Moe.MoeExecutionPath.For(target);
        ckpt.Model.eval();
        return new CheckpointSession(ckpt, tokenizer);
    }

    /// <summary>--checkpoint: a checkpoint directory, a run directory or its checkpoints/ folder (newest is used).</summary>
    public static System.CommandLine.Option<string> Option() => new("--checkpoint")
    {
        Description = "checkpoint directory, or a run directory / checkpoints folder (its latest checkpoint)",
        HelpName = "CKPT",
        Required = true,
    };

    private static string ParseDtype(string dtype) => dtype is "auto" or "fp32" or "bf16" or "float32" or "bfloat16"
        ? dtype
        : throw new UserInputException($"--dtype: must be auto, fp32 or bf16, got '{dtype}'");

    /// <summary>--device: where the model runs (default: the checkpoint config's train.device).</summary>
    public static System.CommandLine.Option<string?> DeviceOption() => new("--device")
    {
        Description = "auto | cpu | cuda | cuda:N (default: the checkpoint config's train.device)", HelpName = "DEVICE",
    };

    /// <summary>--dtype: compute dtype (default: the checkpoint config's train.dtype).</summary>
    public static System.CommandLine.Option<string?> DtypeOption() => new("--dtype")
    {
        Description = "auto | fp32 | bf16 compute (default: the checkpoint config's train.dtype)", HelpName = "DTYPE",
    };

    /// <summary>--weights: the moving average of the weights, when the checkpoint has one, or the trained weights.</summary>
    public static System.CommandLine.Option<string> WeightsOption()
    {
        var o = new System.CommandLine.Option<string>("--weights")
        {
            Description = "auto (the moving average when the checkpoint has one, train.ema_decay) | ema | raw",
            DefaultValueFactory = _ => "auto",
        };
        o.AcceptOnlyFromAmong(CheckpointReader.WeightChoices);
        return o;
    }

    public static System.CommandLine.Option<int?> BeamOption() => new("--beam") { Description = "beam size (default: the checkpoint config's eval.beam); 1 = greedy" };

    /// <summary>--threads: decoding steps are small, so on a busy machine fewer threads than cores can be faster.</summary>
    public static System.CommandLine.Option<int> ThreadsOption() => new("--threads")
    {
        Description = "CPU threads (default 0: the config's train.threads, else all cores)", DefaultValueFactory = _ => 0,
    };

    public static System.CommandLine.Option<int> BatchSizeOption() => new("--batch-size")
    {
        Description = "sentences decoded together", DefaultValueFactory = _ => 32,
    };
}
