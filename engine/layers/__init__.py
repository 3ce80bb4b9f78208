"""Layer types by darknet section name (with darknet's short aliases)."""

from .avgpool import Avgpool
from .base import Layer, Shape
from .connected import Connected
from .convolutional import Convolutional
from .identity import Cost, Dropout
from .maxpool import Maxpool
from .route import Route
from .shortcut import Shortcut
from .softmax import Softmax

LAYER_TYPES = {
    "convolutional": Convolutional,
    "conv": Convolutional,
    "connected": Connected,
    "conn": Connected,
    "maxpool": Maxpool,
    "max": Maxpool,
    "avgpool": Avgpool,
    "avg": Avgpool,
    "softmax": Softmax,
    "soft": Softmax,
    "dropout": Dropout,
    "cost": Cost,
    "shortcut": Shortcut,
    "route": Route,
}

__all__ = [
    "LAYER_TYPES",
    "Layer",
    "Shape",
    "Avgpool",
    "Connected",
    "Convolutional",
    "Cost",
    "Dropout",
    "Maxpool",
    "Route",
    "Shortcut",
    "Softmax",
]
