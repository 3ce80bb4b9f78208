"""tdn's inference engine: darknet classifiers (.cfg + .weights) in numpy + Numba.

from engine import Network
net = Network.load("cfg/tiny.cfg", "tiny.weights")
probs = net.predict(engine.letterbox(engine.load_image("dog.jpg"), *net.input_size))
"""

from .parallel import preload_tbb

preload_tbb()  # before any parallel kernel runs: Numba picks its threading layer then
# ruff: noqa: E402

from .classify import TTA_CHOICES, Classifier, NamesError, Prediction, class_name, load_names, parse_tta
from .errors import CfgError, EngineError, ShapeError, WeightsError, one_line
from .heatmap import Heatmap, NoHeatmap
from .image import (
    MAX_ASPECT,
    RESIZE_HELP,
    RESIZE_MODES,
    ImageError,
    check_resize_mode,
    fit_input,
    image_from_array,
    letterbox,
    load_image,
    resize,
    resize_min,
)
from .network import Network
from .parallel import threads
from .spec import NetworkSpec, parse_network
from .weights import expected_weights_bytes, read_weights, write_random_weights, write_weights

__all__ = [
    "CfgError",
    "EngineError",
    "ImageError",
    "ShapeError",
    "WeightsError",
    "one_line",
    "MAX_ASPECT",
    "RESIZE_HELP",
    "RESIZE_MODES",
    "check_resize_mode",
    "fit_input",
    "image_from_array",
    "letterbox",
    "load_image",
    "resize",
    "resize_min",
    "Classifier",
    "NamesError",
    "Prediction",
    "class_name",
    "load_names",
    "threads",
    "TTA_CHOICES",
    "parse_tta",
    "Heatmap",
    "NoHeatmap",
    "Network",
    "NetworkSpec",
    "parse_network",
    "expected_weights_bytes",
    "read_weights",
    "write_random_weights",
    "write_weights",
]
