"""Teach your own classes: a new classifier head on a darknet network, and its last layers
fine-tuned when that measurably helps.

The base network (Tiny Darknet by default) stays frozen while the head is chosen; a head of plain darknet layers reads
one of its layers, or a [route] of several (heads.py), and classifies:

    [route] layers=17,19 (when more than one)  →  [convolutional] filters=K size=1 linear
                                               →  [avgpool]  →  [softmax]

A linear 1×1 convolution commutes with global average pooling: avgpool(W * F + b) = W·mean(F) + b.
So a head trains on one vector per image (its layers' outputs averaged over space) and is still
exactly the exported network, at any input size. Training is balanced, L2-regularised
multinomial logistic regression (regression.py). Cross-validation over the images picks the
head among the candidates and the l2 from a grid; the chosen head is then fitted on every image,
and its cross-validated accuracy is what teaching reports (training.py). Fine-tuning then trains
the base's last layers with the head on augmented views of the photos, cross-validated on the
same folds, and is kept only when it beats the linear head there (finetune.py).

API for the GUI's Teach view (no Qt here; run it on the worker thread that owns the network)::

    backbone = Backbone.load(cfg, weights)   # or Backbone(net); layers=18 or (17, 19) forces a head
    dataset = scan_dataset(folder)           # or Dataset(("cat", "dog"), ((path, 0), (path, 1), ...))
    cache = user_feature_cache()             # or FeatureCache(folder_or_None): keep one, re-extracting is instant
    features = extract_features(backbone, dataset, augment=("flip",), cache=cache,
                                progress=lambda done, total: ..., cancel=event)
    result = train_head(features, folds=5, l2=None, seed=0, progress=lambda done, total: ...)
    result = fine_tune(result, seed=0, progress=..., cancel=event)   # optional: see finetune.py
    result.fine_tuning.describe()            # what it tried and kept (the linear head unless it won)
    result.cv, result.how                    # Evaluation (.accuracy, .precision, .recall, .confusion), a sentence
    result.judged()                          # each image's out-of-fold prediction (Judged)
    result.head, result.l2, result.trials    # what was chosen, and every head × l2 tried
    result.few                               # classes with too few images to trust their figures
    model = result.model                     # TaughtModel, fitted on every image
    model.classify(image)                    # engine.Prediction from the pooled head (live classification)
    model.classifier()                       # engine.Classifier over the exported network itself
    paths = export(model, out_dir, name)     # ExportPaths(cfg, weights, names): all three files or none

teach() does extract_features + train_head (+ fine_tune with fine_tuning=True). Every error is a
TeachError (an EngineError: one line); `cancel` (a callable returning True, or a threading.Event)
makes extract_features / train_head / fine_tune raise Cancelled. Features computed before a cancel
stay in the cache. Nothing here is thread-safe: one thread at a time, like engine.Network.

Modules, one concept each: errors (TeachError, Cancelled), dataset (the class folders), heads
(which layers a head reads), backbone (the frozen part), features (pooled features,
augmentation, their cache), regression (one fit), training (cross-validation, the choice, the
final fit), tuned_part (the layers fine-tuning trains, as a network of their own), finetune
(training them with the head, cross-validated against the linear head), pipeline (teach(): all
of it in one call), model (TaughtModel), exporting (the darknet files).
"""

from .backbone import FEATURE_FORMAT, Backbone
from .dataset import Dataset, check_dataset, class_files, scan_dataset
from .errors import Cancelled, TeachError
from .exporting import ExportPaths, check_output, export
from .features import (
    AUGMENTATIONS,
    BATCH,
    CROP,
    FeatureCache,
    Features,
    augment_image,
    extract_features,
    user_feature_cache,
)
from .finetune import DEPTHS, FineTuning, TuneTrial, fine_tune
from .heads import FEATURE_KINDS, Head, candidate_heads, check_head, check_layer, default_layer
from .model import TaughtModel
from .training import (
    DEFAULT_FOLDS,
    L2_GRID,
    MIN_TRUSTED,
    Evaluation,
    Judged,
    TeachResult,
    Trial,
    assign_folds,
    evaluate,
    train_head,
)
from .pipeline import teach

__all__ = [
    "TeachError",
    "Cancelled",
    "Dataset",
    "scan_dataset",
    "check_dataset",
    "class_files",
    "FEATURE_FORMAT",
    "FEATURE_KINDS",
    "Backbone",
    "Head",
    "candidate_heads",
    "check_head",
    "default_layer",
    "check_layer",
    "AUGMENTATIONS",
    "BATCH",
    "CROP",
    "FeatureCache",
    "Features",
    "augment_image",
    "extract_features",
    "user_feature_cache",
    "DEFAULT_FOLDS",
    "L2_GRID",
    "MIN_TRUSTED",
    "Evaluation",
    "Judged",
    "TeachResult",
    "Trial",
    "assign_folds",
    "evaluate",
    "teach",
    "train_head",
    "DEPTHS",
    "FineTuning",
    "TuneTrial",
    "fine_tune",
    "TaughtModel",
    "ExportPaths",
    "check_output",
    "export",
]
