"""darknet's layer table (type, filters, size, input → output, BFLOPs) and the totals the
Tiny Darknet page compares models by: operations and weights-file size."""

from __future__ import annotations

from dataclasses import dataclass

from .spec import NetworkSpec
from .weights import count_params, expected_weights_bytes


@dataclass(frozen=True)
class LayerRow:
    index: int
    kind: str
    filters: str
    size: str
    input: tuple[int, int, int]  # (h, w, c)
    output: tuple[int, int, int]
    bflops: float


@dataclass(frozen=True)
class Summary:
    name: str
    rows: list[LayerRow]
    bflops: float
    params: int
    weights_bytes: int  # published darknet files (16-byte header)

    @property
    def weights_mb(self) -> float:
        return self.weights_bytes / 2**20  # the page's "MB" are MiB: tiny 4.0, alexnet 238

    def table(self) -> str:
        lines = [f"{'layer':>5} {'type':<10}{'filters':>8}  {'size':<12}{'input':>18}      {'output':<18}{'BFLOPs':>8}"]
        for r in self.rows:
            flops = f"{r.bflops:8.3f}" if r.bflops else ""
            lines.append(
                f"{r.index:>5} {r.kind:<10}{r.filters:>8}  {r.size:<12}{_shape(r.input):>18}  ->  "
                f"{_shape(r.output):<18}{flops}"
            )
        lines.append(
            f"total: {self.bflops:.3f} BFLOPs, {self.params:,} parameters, "
            f"weights file {self.weights_bytes:,} bytes ({self.weights_mb:.1f} MB)"
        )
        return "\n".join(lines)


def _shape(shape: tuple[int, int, int]) -> str:
    h, w, c = shape
    return f"{w:>4} x{h:>4} x{c:>5}"


def summarize(spec: NetworkSpec) -> Summary:
    rows = []
    for layer, in_shape, out_shape in zip(spec.layers, spec.input_shapes(), spec.shapes):
        kind, filters, size = layer.summary_row(in_shape, out_shape)
        rows.append(
            LayerRow(layer.index, kind, filters, size, in_shape, out_shape, layer.flops(in_shape, out_shape) / 1e9)
        )
    return Summary(spec.name, rows, sum(r.bflops for r in rows), count_params(spec), expected_weights_bytes(spec))
