"""The loss curve of a training run: a CSV of every update and a PNG drawn from it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..files import write_atomic

CSV_HEADER = "update,images,loss,avg_loss,rate,seconds\n"
SIZE = (800, 420)
MARGIN = (60, 20, 20, 40)  # left, top, right, bottom


def csv_row(update: int, images: int, loss: float, avg: float, rate: float, seconds: float) -> str:
    return f"{update},{images},{loss:.6f},{avg:.6f},{rate:.8g},{seconds:.3f}\n"


def read_rows(path: Path) -> np.ndarray:
    """(updates, 6) from a curve CSV (an empty array when it has no rows)."""
    try:
        return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError):
        return np.empty((0, 6))


def draw_png(rows: np.ndarray, path: Path, title: str) -> None:
    """Loss (grey) and darknet's running average (blue) against updates; the rate's scale on the right."""
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = MARGIN
    x0, y0, x1, y1 = left, top, SIZE[0] - right, SIZE[1] - bottom
    draw.rectangle([x0, y0, x1, y1], outline="black")
    draw.text((x0, 3), title, fill="black")
    if len(rows):
        updates, loss, avg, rate = rows[:, 0], rows[:, 2], rows[:, 3], rows[:, 4]
        finite = np.isfinite(loss)
        top_value = float(np.percentile(loss[finite], 99)) if finite.any() else 1.0
        top_value = max(top_value, float(np.nanmax(avg)) if np.isfinite(avg).any() else 0, 1e-6)
        first, last = float(updates[0]), float(max(updates[-1], updates[0] + 1))

        def points(values, scale):
            xs = x0 + (updates - first) / (last - first) * (x1 - x0)
            ys = y1 - np.clip(values / scale, 0, 1) * (y1 - y0)
            return [(float(a), float(b)) for a, b in zip(xs, ys) if np.isfinite(b)]

        if rate.max() > 0:
            draw.line(points(rate, rate.max()), fill=(230, 160, 60), width=1)
        draw.line(points(loss, top_value), fill=(170, 170, 170), width=1)
        draw.line(points(avg, top_value), fill=(30, 90, 200), width=2)
        for fraction in (0, 0.5, 1):
            y = y1 - fraction * (y1 - y0)
            draw.text((4, y - 6), f"{fraction * top_value:.3g}", fill="black")
        draw.text((x0, y1 + 6), f"update {int(first)}", fill="black")
        draw.text((x1 - 90, y1 + 6), f"update {int(last)}", fill="black")
    draw.text((x0 + 8, y0 + 6), "loss", fill=(120, 120, 120))
    draw.text((x0 + 48, y0 + 6), "average loss", fill=(30, 90, 200))
    draw.text((x0 + 148, y0 + 6), "learning rate (own scale)", fill=(230, 160, 60))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    write_atomic(path, buffer.getvalue())
