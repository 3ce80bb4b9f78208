"""Trainer: a network's training state and darknet's train_network_datum / update_network.

    trainer = Trainer(spec, params, read_settings(spec))
    loss = trainer.train_update(images, labels)   # batch images: subdivisions calls, one update

Every buffer a training pass needs (each layer's output and delta, batch-norm statistics, the
max pools' winners, the updates that carry the momentum, the shared im2col workspace) is added
up in a dry run and checked against the memory budget before any is allocated.
"""

from __future__ import annotations

import numpy as np

from .. import memory
from ..errors import EngineError
from ..kernels import training_kernels
from ..kernels.backprop import adam_update, sgd_update
from ..layers.base import Layer
from ..spec import NetworkSpec
from ..weights import Params
from .settings import TrainSettings


class TrainingError(EngineError):
    """A network or data tdn cannot train with, said in one line."""


def output_layer(spec: NetworkSpec) -> int:
    """The layer whose output is the network's answer: the last one that is not a [cost]."""
    for i in range(len(spec.layers) - 1, -1, -1):
        if spec.layers[i].kind != "cost":
            return i
    raise TrainingError(f"{spec.path}: the cfg has only [cost] layers")


class Trainer:
    def __init__(
        self,
        spec: NetworkSpec,
        params: Params,
        settings: TrainSettings,
        *,
        seen: int = 0,
        compiled: bool = True,
        seed: int = 0,
        extra_bytes: int = 0,
    ):
        """extra_bytes: what the caller holds beside the network (the loader's batches), added to
        the memory check."""
        self.spec, self.params, self.settings = spec, params, settings
        self.seen = seen  # images trained on, as darknet counts them
        self.calls = 0  # forward/backward calls since the start
        self.t = 0  # updates made (Adam's step count)
        self.k = training_kernels(compiled)
        self.rng = np.random.default_rng(seed)
        self.batch = settings.call_batch
        self.output_index = output_layer(spec)
        self.classes = int(np.prod(spec.shapes[self.output_index]))
        self._check_trainable()
        with memory.counting() as count:
            self._build(dry_run=True)
        self.memory_bytes = count[0] + 4 * self._workspace_floats
        memory.check(self.memory_bytes + extra_bytes, f"training {spec.name} ({self.batch} images a call)")
        self._build(dry_run=False)

    # --- building ------------------------------------------------------------------------
    def _check_trainable(self) -> None:
        spec = self.spec
        for layer in spec.layers:
            if type(layer).train_step is Layer.train_step:
                raise TrainingError(f"{layer.describe()} cannot train in tdn")
            bn = getattr(layer, "batch_normalize", False)
            if bn:
                shape = spec.shapes[layer.index]
                if self.batch * shape[0] * shape[1] < 2:
                    raise TrainingError(
                        f"{layer.describe()}: batch_normalize needs two or more values per "
                        f"channel in a call, and batch/subdivisions is {self.batch}"
                    )
        scorers = [
            layer
            for layer in spec.layers
            if layer.kind == "cost"
            or (layer.kind == "softmax" and not layer.noloss and layer.index == self.output_index)
        ]
        if not any(layer.param_layout(shape) for layer, shape in zip(spec.layers, spec.input_shapes())):
            raise TrainingError(f"{spec.path}: nothing to train: no layer has weights")
        if not scorers:
            raise TrainingError(
                f"{spec.path}: nothing to learn from: the cfg needs a [softmax] as its last layer, or a [cost] layer"
            )

    def _build(self, dry_run: bool) -> None:
        spec, k, batch = self.spec, self.k, self.batch
        self._workspace_floats = 0
        try:
            self.steps = []
            for layer, in_shape, out_shape, params in zip(spec.layers, spec.input_shapes(), spec.shapes, self.params):
                self.steps.append(layer.train_step(in_shape, out_shape, batch, params, k))
        except EngineError as exc:
            raise TrainingError(str(exc)) from None
        self._workspace_floats = max((step.workspace_floats for step in self.steps), default=0)
        stop = self.settings.stop_backward
        learns = np.cumsum([bool(step.learned) and i > stop for i, step in enumerate(self.steps)])
        # a layer's delta is needed where something at or before it learns by backward (none at
        # or before a stopbackward layer, which the backward pass never reaches)
        self.deltas = [
            memory.empty((batch,) + shape, np.float32) if learns[i] else None for i, shape in enumerate(spec.shapes)
        ]
        self.moments = [
            {
                name: (memory.empty(a.shape, np.float32), memory.empty(a.shape, np.float32))
                for name, a in step.learned.items()
            }
            if self.settings.adam
            else {}
            for step in self.steps
        ]
        if dry_run:
            return
        workspace = memory.empty(self._workspace_floats, np.float32)
        for step, delta, moments in zip(self.steps, self.deltas, self.moments):
            step.workspace = workspace
            if hasattr(step, "delta"):
                step.delta = delta
            for m, v in moments.values():
                m[...] = 0
                v[...] = 0
        self.scorers = [
            i
            for i, step in enumerate(self.steps)
            if getattr(step, "scores", False) and (spec.layers[i].kind == "cost" or i == self.output_index)
        ]

    # --- darknet's train_network_datum --------------------------------------------------------
    def truth(self, labels: np.ndarray) -> np.ndarray:
        truth = np.zeros((len(labels), self.classes), np.float32)
        truth[np.arange(len(labels)), labels] = 1
        return truth

    def forward(self, x: np.ndarray, truth: np.ndarray | None = None, train: bool = True) -> np.ndarray:
        """The network's output for x (n, h, w, c); with truth, each scoring layer's delta and
        cost (darknet's forward_network with net.truth)."""
        n = x.shape[0]
        for delta in self.deltas:
            if delta is not None:
                delta[:n] = 0
        self.outputs = [None] * len(self.steps)
        current = x
        for i, step in enumerate(self.steps):
            step.truth = truth if i in getattr(self, "scorers", ()) else None
            step.cost = None
            current = step.forward(current, self.outputs, train)
            self.outputs[i] = current
        return self.outputs[self.output_index]

    def cost(self) -> float:
        """darknet's calc_network_cost: the mean of the scoring layers' summed costs."""
        costs = [self.steps[i].cost for i in self.scorers if self.steps[i].cost is not None]
        return sum(costs) / len(costs) if costs else float("nan")

    def backward(self, x: np.ndarray) -> None:
        n = x.shape[0]
        last_stop = self.settings.stop_backward
        for i in range(len(self.steps) - 1, last_stop, -1):
            delta = self.deltas[i]
            if delta is None:
                break
            inp = x if i == 0 else self.outputs[i - 1]
            dx = None if i == 0 or self.deltas[i - 1] is None else self.deltas[i - 1][:n]
            self.steps[i].backward(delta[:n], inp, self.outputs, self.deltas, dx)

    def train_call(self, x: np.ndarray, labels: np.ndarray) -> float:
        """One of darknet's train_network_datum calls on batch/subdivisions images: forward and
        backward, then the update when this call ends a batch. Returns the summed cost."""
        self.seen += x.shape[0]
        # a diverging network overflows on its way to an infinite loss: the run reports that
        # loss in one line, without numpy's warnings before it
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.forward(x, self.truth(labels))
            cost = self.cost()
            self.backward(x)
            self.calls += 1
            if (self.seen // self.batch) % self.settings.subdivisions == 0:
                self.update()
        return cost

    def train_update(self, x: np.ndarray, labels: np.ndarray) -> float:
        """A whole batch (the cfg's batch images) in subdivisions calls: darknet's train_network.
        Returns the loss as darknet prints it: the summed cost over the images."""
        b = self.batch
        total = sum(self.train_call(x[i : i + b], labels[i : i + b]) for i in range(0, len(x), b))
        return total / len(x)

    # --- darknet's update_network ------------------------------------------------------------
    @property
    def batches_done(self) -> int:
        """darknet's get_current_batch: updates' worth of images seen."""
        return self.seen // (self.batch * self.settings.subdivisions)

    def rate(self) -> float:
        return self.settings.rate(self.batches_done, self.rng)

    def update(self) -> None:
        s = self.settings
        batch = s.call_batch * s.subdivisions
        rate = self.rate()
        self.t += 1
        for i, (step, moments) in enumerate(zip(self.steps, self.moments)):
            layer_rate = rate * s.layer_rates[i] if s.layer_rates else rate
            for name, values in step.learned.items():
                updates = step.updates[name]
                if s.adam:
                    m, v = moments[name]
                    adam_update(values, updates, m, v, layer_rate, s.decay, batch, s.b1, s.b2, s.eps, self.t)
                else:
                    sgd_update(values, updates, layer_rate, s.momentum, s.decay, batch, name == "weights")
                if s.clip and name == "weights":
                    np.clip(values, -s.clip, s.clip, out=values)
