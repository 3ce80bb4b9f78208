"""Network: a parsed cfg, its loaded weights and per-input-shape forward plans.

Three separate things, as in llama2.c: the spec (blueprint), the packed weights (batch norm
folded, layouts for GEMM), and plans (engine/plan.py: every activation buffer for one (n, h, w)
and thread count, allocated once and reused, so a webcam loop allocates nothing per frame).
"""

from __future__ import annotations

import copy
from pathlib import Path
from time import perf_counter

import numpy as np

from . import kernels
from .errors import ShapeError
from .parallel import threads
from .plan import PlanCache, check_budget
from .spec import NetworkSpec, parse_network
from .weights import Params, WeightsHeader, count_params, read_weights


class Network:
    def __init__(self, spec: NetworkSpec, params: Params, header: WeightsHeader | None = None):
        self.spec = spec
        self.params = params
        self.header = header
        self._packed = [
            layer.pack_weights(p, shape) for layer, p, shape in zip(spec.layers, params, spec.input_shapes())
        ]
        self._plans = PlanCache()
        self._fits: set[tuple] = set()  # (batch, h, w, threads) that check_memory passed

    @classmethod
    def load(cls, cfg_path: str | Path, weights_path: str | Path) -> "Network":
        spec = parse_network(cfg_path)
        header, params = read_weights(weights_path, spec)
        return cls(spec, params, header)

    # --- what the network is ------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.spec.width, self.spec.height)

    @property
    def any_size(self) -> bool:
        return self.spec.any_size

    @property
    def classes(self) -> int:
        h, w, c = self.spec.shapes[-1]
        return h * w * c

    @property
    def param_count(self) -> int:
        return count_params(self.spec)

    @property
    def bflops(self) -> float:
        spec = self.spec
        return sum(layer.flops(i, o) for layer, i, o in zip(spec.layers, spec.input_shapes(), spec.shapes)) / 1e9

    def replica(self) -> "Network":
        """The same network with buffers of its own, for a second thread: the packed weights
        are shared (read-only), the forward plans (every activation buffer) are not."""
        twin = copy.copy(self)
        twin._plans = PlanCache()
        return twin

    # --- inference ----------------------------------------------------------------------
    def predict(self, x: np.ndarray, keep_going=None) -> np.ndarray | None:
        """x: (h, w, c) or (n, h, w, c) float RGB in 0..1 → (classes,) or (n, classes).

        Any h, w works for networks without [connected] layers; the first call at a new
        shape builds its buffers, later calls reuse them. keep_going: see forward.
        """
        single = x.ndim == 3
        x = x[None] if single else x
        if x.ndim != 4 or x.shape[3] != self.spec.channels:
            raise ShapeError(
                f"{self.spec.path}: input must be (h, w, {self.spec.channels}) or "
                f"(n, h, w, {self.spec.channels}), got {tuple(x.shape)}"
            )
        out = self.forward(x, keep_going=keep_going)
        if out is None:
            return None
        probs = self._flatten_output(out)
        return probs[0] if single else probs

    def predict_keeping(self, x: np.ndarray, layer: int, keep_going=None):
        """predict on an (n, h, w, c) batch and also return `layer`'s own output (nothing joined
        after it), from one pass: ((n, classes), (n, h', w', c') copy), or None when keep_going
        stopped the pass. A heatmap's map is such an output (engine/heatmap.py)."""
        outputs = self._run(x, None, frozenset((layer,)), keep_going=keep_going)
        if outputs is None:
            return None
        return np.array(self._flatten_output(outputs[-1]), copy=True), np.array(outputs[layer], copy=True)

    def packed_weights(self, layer: int):
        """Layer `layer`'s weights as its forward step uses them (read-only)."""
        return self._packed[layer]

    def forward(self, x: np.ndarray, observer=None, stop: int | None = None, keep_going=None) -> np.ndarray | None:
        """Run the layers on an NHWC batch (float32); return the last output (copied).

        stop: run layers 0..stop only and return layer stop's output (features for transfer
        learning). observer(layer_index, seconds) is called after each layer when given.
        keep_going() is asked before each layer when given; on False the pass is abandoned and
        forward returns None (a video frame whose answer a newer frame's has made pointless).
        """
        outputs = self._run(x, stop, frozenset(), observer, keep_going)
        return None if outputs is None else np.array(outputs[-1], copy=True)

    def _run(self, x: np.ndarray, stop: int | None, keep: frozenset, observer=None, keep_going=None):
        """Every layer's output for layers 0..stop (buffers of the plan: valid until the next
        pass), or None when keep_going stopped the pass. keep: layers whose own outputs are
        wanted, so never pooled away by fusion."""
        if not (x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable):
            x = np.array(x, dtype=np.float32, order="C")  # the one array type kernels take
        kernels.refresh()  # compiled kernels that have arrived take over from here
        steps = self.plan(x.shape[0], x.shape[1], x.shape[2], stop, keep)
        outputs: list = [None] * len(steps)
        current = x
        for i, step in enumerate(steps):
            if keep_going is not None and not keep_going():
                return None
            if observer is None:
                current = outputs[i] = step(current, outputs)
            else:
                start = perf_counter()
                current = outputs[i] = step(current, outputs)
                observer(i, perf_counter() - start)
        return outputs

    def warm_up(self) -> None:
        """One small forward pass: it loads the compiled kernels there are (in "auto" mode, see
        engine.kernels) and sets up what a first pass sets up, so that the first real
        prediction is timed like every later one."""
        h, w = self.spec.height, self.spec.width
        if self.any_size:
            h, w = min(h, 64), min(w, 64)
        try:
            self.predict(np.zeros((h, w, self.spec.channels), np.float32))
        except ShapeError:  # too small for this network: use its own size
            self.predict(np.zeros((self.spec.height, self.spec.width, self.spec.channels), np.float32))

    def features(self, x: np.ndarray, layer: int) -> np.ndarray:
        """Output of `layer` for x (h, w, c) or (n, h, w, c): (n, h', w', c') float32."""
        return self.features_of(x, (layer,))[0]

    def features_of(self, x: np.ndarray, layers) -> list[np.ndarray]:
        """Outputs of several layers for x (h, w, c) or (n, h, w, c), from one forward pass:
        [(n, h', w', c') float32 copies], in the order asked."""
        for layer in layers:
            if not 0 <= layer < len(self.spec.layers):
                raise ShapeError(
                    f"{self.spec.path}: no layer {layer} (the network has layers 0-{len(self.spec.layers) - 1})"
                )
        x = x[None] if x.ndim == 3 else x
        outputs = self._run(x, max(layers), frozenset(layers))
        return [np.array(outputs[layer], copy=True) for layer in layers]

    def forget_plans(self) -> None:
        """Drop every plan (its buffers go once nothing else holds them); the next pass builds
        what it needs. For after a job that ran the network on shapes no view will use again."""
        self._plans = PlanCache()

    @property
    def plans_held(self) -> int:
        """How many input shapes this network keeps buffers for (at most plan.MAX_PLANS)."""
        return len(self._plans)

    def check_memory(self, batch: int, height: int, width: int) -> None:
        """MemoryBudgetError (one line) when a whole pass on `batch` inputs of height x width would
        not fit the memory budget (engine/memory.py): asked before an input that size is made.
        Allocates nothing; safe on any thread."""
        key = (batch, height, width, threads())
        if key not in self._fits:
            last = len(self.spec.layers) - 1
            check_budget(self.spec, self._packed, batch, height, width, last, frozenset({last}), key[3])
            self._fits.add(key)

    def plan(self, batch: int, height: int, width: int, stop: int | None = None, keep: frozenset = frozenset()) -> list:
        """Forward steps with buffers for up to `batch` images of height × width, for layers
        0..stop (all by default), at the calling thread's kernel threads; the outputs of stop
        and of the layers in `keep` are their own (no following pool done in their step)."""
        last = len(self.spec.layers) - 1 if stop is None else stop
        return self._plans.get(self.spec, self._packed, batch, height, width, last, frozenset(keep) | {last}, threads())

    def _flatten_output(self, out: np.ndarray) -> np.ndarray:
        n, h, w, c = out.shape
        if h * w > 1:  # darknet's outputs are channel-major
            out = out.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out.reshape(n, h * w * c))
