"""Teach your own classes: a new classifier head on a frozen darknet network.

The base network (Tiny Darknet by default) stays frozen up to a feature layer L; a head of plain
darknet layers follows it:

    [convolutional] filters=K size=1 activation=linear  →  [avgpool]  →  [softmax]

A linear 1×1 convolution commutes with global average pooling: avgpool(W * F + b) = W·mean(F) + b.
So the head is trained on one vector per image (layer L's output averaged over space) and is still
exactly the exported network, at any input size. Training is L2-regularised multinomial logistic
regression (mean cross-entropy + l2/2·|W|², full batch, L-BFGS from zeros): a few seconds, and the
same result for the same seed (the seed chooses the validation split). The optimiser sees
standardised features; the standardisation is folded into W and b before they leave train_head, so
the head anyone sees is always W·mean(features) + b.

API for the GUI's Teach view (no Qt here; run it on the worker thread that owns the network)::

    backbone = Backbone.load(cfg, weights, layer=None)  # or Backbone(net): layer None → default_layer
    dataset = scan_dataset(folder)           # or Dataset(("cat", "dog"), ((path, 0), (path, 1), ...))
    cache = FeatureCache(folder_or_None)     # keep one: re-extracting after adding images is instant
    features = extract_features(backbone, dataset, augment=("flip",), cache=cache,
                                progress=lambda done, total: ..., cancel=event)
    result = train_head(features, val_fraction=0.2, seed=0, epochs=100,
                        on_epoch=lambda s: ...)   # s: EpochStats(epoch, loss, train_accuracy, val_accuracy)
    result.val, result.train                 # Evaluation: .accuracy, .per_class, .confusion (true × predicted)
    model = result.model                     # TaughtModel
    model.classify(image)                    # engine.Prediction from the pooled head (live classification)
    model.classifier()                       # engine.Classifier over the exported network itself
    paths = export(model, out_dir, name)     # ExportPaths(cfg, weights, names): all three files or none

teach() does extract_features + train_head. Every error is a TeachError (an EngineError: one line);
`cancel` (a callable returning True, or a threading.Event) makes extract_features / train_head raise
Cancelled. Features computed before a cancel stay in the cache. Nothing here is thread-safe: one
thread at a time, like engine.Network.

Modules, one concept each: errors (TeachError, Cancelled), dataset (the class folders), backbone
(the frozen part), features (pooled features, augmentation, their cache), training (the split and
the head), model (TaughtModel), exporting (the darknet files).
"""
from .backbone import FEATURE_FORMAT, FEATURE_KINDS, Backbone, check_layer, default_layer
from .dataset import Dataset, check_dataset, scan_dataset
from .errors import Cancelled, TeachError
from .exporting import ExportPaths, check_output, export
from .features import (AUGMENTATIONS, BATCH, CROP, FeatureCache, Features, augment_image,
                       extract_features)
from .model import TaughtModel
from .training import (DEFAULT_EPOCHS, DEFAULT_L2, DEFAULT_VAL, EpochStats, Evaluation, TeachResult,
                       evaluate, split_images, teach, train_head)

__all__ = [
    "TeachError", "Cancelled",
    "Dataset", "scan_dataset", "check_dataset",
    "FEATURE_FORMAT", "FEATURE_KINDS", "Backbone", "default_layer", "check_layer",
    "AUGMENTATIONS", "BATCH", "CROP", "FeatureCache", "Features", "augment_image", "extract_features",
    "DEFAULT_EPOCHS", "DEFAULT_L2", "DEFAULT_VAL", "EpochStats", "Evaluation", "TeachResult",
    "evaluate", "split_images", "teach", "train_head",
    "TaughtModel",
    "ExportPaths", "check_output", "export",
]
