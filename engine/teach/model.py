"""The taught model: backbone + head, as a live classifier and as a darknet network."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ..cfg import read_sections
from ..classify import Classifier, Prediction
from ..image import image_from_array
from ..network import Network
from ..spec import parse_network
from .backbone import Backbone
from .heads import Head
from .tuned_part import layer_span


class TaughtModel:
    """Backbone + head: probabilities = softmax(W·mean(F) + b), F the head's layers side by side
    (a [route] of them when more than one); W (K, C), b (K,). tuned_layers: the base's layers
    whose weights fine-tuning changed (the backbone holds them); empty for a linear head."""

    def __init__(
        self,
        backbone: Backbone,
        head: Head,
        classes: Sequence[str],
        weights: np.ndarray,
        bias: np.ndarray,
        tuned_layers: Sequence[int] = (),
    ):
        self.backbone = backbone
        self.tuned_layers = tuple(tuned_layers)
        self.head = head
        self.classes = tuple(classes)
        self.weights = np.asarray(weights, np.float32)  # (k, c)
        self.bias = np.asarray(bias, np.float32)  # (k,)
        self._columns = backbone.columns(head)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """The backbone's pooled features (n, backbone.channels) → (n, k) probabilities."""
        logits = np.asarray(vectors, np.float64)[:, self._columns] @ self.weights.T.astype(np.float64) + self.bias
        return softmax_ce(logits, np.zeros(len(logits), np.int64))[0]

    def classify(self, image: np.ndarray) -> Prediction:
        """image: (h, w, 3) RGB, uint8 or float 0..1."""
        start = time.perf_counter()
        x = self.backbone.preprocess(image_from_array(image))
        probs = self.probabilities(self.backbone.pooled(x[None]))[0].astype(np.float32)
        return Prediction(probs, self.classes, time.perf_counter() - start, x.shape[:2])

    def head_params(self) -> list[dict[str, np.ndarray]]:
        """darknet's arrays for the head's layers: a [route] (none), the conv's biases and
        (filters, c, 1, 1) weights, [avgpool] and [softmax] (none)."""
        conv = {"biases": self.bias.copy(), "weights": self.weights.reshape(-1).copy()}
        route = [{}] if len(self.head.layers) > 1 else []
        return route + [conv, {}, {}]

    def cfg_text(self, name: str) -> str:
        """[net] and layers 0..last of the base cfg verbatim (last: the head's last layer), then the
        head."""
        b, head = self.backbone, self.head
        last = read_sections(b.cfg_path, b.cfg_text)[head.last + 1]  # section 0 is [net]
        end = max([last.line] + [line for _, line in last.options.values()])
        k = len(self.classes)
        channels = self.weights.shape[1]
        lines = [
            f"# {name}: {k} classes taught by `tdn teach` ({name}.names, one a line, in output order).",
            f"# Layers 0-{head.last} are {b.cfg_path.name}'s, copied verbatim below (its comments describe",
            "# the whole base network); the layers after them are the taught head.",
            *(
                [f"# {layer_span(self.tuned_layers).capitalize()}'s weights were fine-tuned with the head."]
                if self.tuned_layers
                else []
            ),
            "",
            *b.cfg_text.splitlines()[:end],
            "",
        ]
        if len(head.layers) > 1:
            lines += [
                f"# --- taught head: [route] of layers {' and '.join(map(str, head.layers))}, "
                f"1x1 conv {channels} -> {k} classes (linear), global average pool, softmax ---",
                "",
                "[route]",
                "layers=" + ",".join(map(str, head.layers)),
                "",
            ]
        else:
            lines += [
                f"# --- taught head: 1x1 conv {channels} -> {k} classes (linear) on layer {head.last}, "
                "global average pool, softmax ---",
                "",
            ]
        lines += [
            "[convolutional]",
            f"filters={k}",
            "size=1",
            "stride=1",
            "activation=linear",
            "",
            "[avgpool]",
            "",
            "[softmax]",
            "groups=1",
        ]
        return "\n".join(lines) + "\n"

    def network(self, name: str = "taught") -> Network:
        """The exported network, in memory."""
        spec = parse_network(f"{name}.cfg", self.cfg_text(name))
        params = list(self.backbone.params[: self.head.last + 1]) + self.head_params()
        return Network(spec, params, self.backbone.header)

    def classifier(self, name: str = "taught") -> Classifier:
        return Classifier(self.network(name), list(self.classes), self.backbone.resize)


def softmax_ce(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """Row softmax of (n, k) logits and the mean cross-entropy of the true labels."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_norm
    return np.exp(log_p), float(-np.mean(log_p[np.arange(len(labels)), labels]))
