using TorchSharp;
using ZCode.Config;
using ZCode.Training;
using static TorchSharp.torch;

namespace ZCode.Tests.Training;

/// <summary>Label-smoothed loss against LibTorch's own cross entropy, and the learning-rate schedules.</summary>
public class LossAndScheduleTests
{
    [TestCase(0.0)]
    [TestCase(0.1)]
    public void LabelSmoothedLossEqualsLibTorchCrossEntropySum(double epsilon)
    {
        torch.manual_seed(3);
        var logits = randn(2, 5, 11);
        var targets = tensor(new long[] { 4, 7, 1, 0, 0, 9, 3, 3, 2, 0 }).reshape(2, 5);
        var (loss, nll) = Losses.LabelSmoothedCrossEntropy(logits, targets, padId: 0, epsilon);
        var reference = nn.functional.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1), ignore_index: 0,
            reduction: nn.Reduction.Sum, label_smoothing: epsilon);
        var plainNll = nn.functional.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1), ignore_index: 0,
            reduction: nn.Reduction.Sum);
        Assert.That(loss.item<float>(), Is.EqualTo(reference.item<float>()).Within(1e-4));
        Assert.That(nll.item<float>(), Is.EqualTo(plainNll.item<float>()).Within(1e-4));
    }

    [Test]
    public void InverseSqrtWarmsUpLinearlyThenDecays()
    {
        var t = new TrainConfig { Lr = 1e-3, WarmupSteps = 100, Schedule = "inverse_sqrt", MaxSteps = 1000 };
        Assert.That(LearningRateSchedule.At(t, 1), Is.EqualTo(1e-5).Within(1e-12));
        Assert.That(LearningRateSchedule.At(t, 50), Is.EqualTo(5e-4).Within(1e-12));
        Assert.That(LearningRateSchedule.At(t, 100), Is.EqualTo(1e-3).Within(1e-12));
        Assert.That(LearningRateSchedule.At(t, 400), Is.EqualTo(5e-4).Within(1e-12));
    }

    [Test]
    public void LinearDecaysToZeroAndConstantStays()
    {
        var linear = new TrainConfig { Lr = 1e-3, WarmupSteps = 10, Schedule = "linear", MaxSteps = 110 };
        Assert.That(LearningRateSchedule.At(linear, 60), Is.EqualTo(5e-4).Within(1e-12));
        Assert.That(LearningRateSchedule.At(linear, 110), Is.EqualTo(0.0).Within(1e-12));
        var constant = new TrainConfig { Lr = 1e-3, WarmupSteps = 10, Schedule = "constant", MaxSteps = 110 };
        Assert.That(LearningRateSchedule.At(constant, 5), Is.EqualTo(5e-4).Within(1e-12));
        Assert.That(LearningRateSchedule.At(constant, 100), Is.EqualTo(1e-3).Within(1e-12));
    }
}
