"""Training a darknet classifier, as darknet's `classifier train` does, in the engine.

    from engine.training import RunOptions, train
    result = train(RunOptions(cfg="cifar_small.cfg", data="cifar/train", out_dir="run"))
    result.images_per_second, result.final_loss, result.weights

The pieces, one concept a module:
- settings: the cfg's [net] training options (batch, subdivisions, the learning-rate policy,
  momentum, decay, Adam, the augmentation) and the per-layer learning_rate / stopbackward;
- trainer: the training state (each layer's TrainStep, from engine/layers) and darknet's
  train_network_datum and update_network;
- data, augment, loader: the images and their classes, darknet's augmentation, and the thread
  that decodes batches ahead of the engine;
- initial: darknet's random starting weights; curve: the loss curve (CSV and PNG);
- run: the whole loop with its checkpoints, validation and outputs; partial, darknet's `partial`.
"""

from .data import Dataset, read_dataset
from .run import Interrupted, RunOptions, RunProgress, RunResult, partial, train, validate
from .settings import Augment, TrainSettings, read_settings
from .trainer import Trainer, TrainingError

__all__ = [
    "Augment",
    "Dataset",
    "Interrupted",
    "RunOptions",
    "RunProgress",
    "RunResult",
    "TrainSettings",
    "Trainer",
    "TrainingError",
    "partial",
    "read_dataset",
    "read_settings",
    "train",
    "validate",
]
