"""A cfg's training settings: the [net] options darknet's parse_net_options reads (with its
defaults), the learning-rate policy, and the per-layer `learning_rate` scale and `stopbackward`.

The engine's parser (engine/spec.py) accepts these and leaves them alone; this module reads the
same sections again, so every message names the cfg's file and line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..cfg import Section, read_sections
from ..spec import NetworkSpec

POLICIES = ("constant", "step", "steps", "exp", "poly", "sigmoid", "random")


@dataclass(frozen=True)
class Augment:
    """darknet's classifier augmentation (load_data_augment): scale so the shorter side is a
    random size in [min_size, max_size], an aspect change, a rotation and a random crop of the
    network's size; a coin-flip mirror; hue, saturation and exposure jitter. center: scale and
    crop the middle instead of at random."""

    min_size: int
    max_size: int
    angle: float = 0.0
    aspect: float = 1.0
    hue: float = 0.0
    saturation: float = 1.0
    exposure: float = 1.0
    flip: bool = True
    center: bool = False


@dataclass(frozen=True)
class TrainSettings:
    batch: int  # images per update (the cfg's batch)
    subdivisions: int  # calls an update is split into: batch/subdivisions images each
    learning_rate: float
    momentum: float
    decay: float
    policy: str
    max_batches: int
    burn_in: int = 0
    power: float = 4.0
    step: int = 1
    scale: float = 1.0
    gamma: float = 1.0
    steps: tuple[int, ...] = ()
    scales: tuple[float, ...] = ()
    adam: bool = False
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-7
    clip: float = 0.0
    augment: Augment = Augment(0, 0)
    layer_rates: tuple[float, ...] = ()  # each layer's learning_rate scale
    stop_backward: int = -1  # the last layer with stopbackward=1, or -1

    @property
    def call_batch(self) -> int:
        """Images in one forward/backward call (darknet's net->batch after parsing)."""
        return self.batch // self.subdivisions

    def rate(self, batch_num: int, rng: np.random.Generator | None = None) -> float:
        """darknet's get_current_rate at update number batch_num (images seen / batch)."""
        base = self.learning_rate
        if batch_num < self.burn_in:
            return base * (batch_num / self.burn_in) ** self.power
        if self.policy == "constant":
            return base
        if self.policy == "step":
            return base * self.scale ** (batch_num // self.step)
        if self.policy == "steps":
            rate = base
            for step, scale in zip(self.steps, self.scales):
                if step > batch_num:
                    return rate
                rate *= scale
            return rate
        if self.policy == "exp":
            return base * self.gamma**batch_num
        if self.policy == "poly":
            return base * max(0.0, 1 - batch_num / self.max_batches) ** self.power
        if self.policy == "sigmoid":
            return base / (1 + math.exp(min(700.0, self.gamma * (batch_num - self.step))))
        return base * (rng or np.random.default_rng()).uniform(0, 1) ** self.power  # random


def read_settings(spec: NetworkSpec, text: str | None = None) -> TrainSettings:
    """The training settings of spec's cfg (text: the cfg's text where it is not on disk)."""
    sections = read_sections(spec.path, text)
    net = sections[0]
    batch = net.get_int("batch", 1)
    subdivisions = net.get_int("subdivisions", 1)
    if batch < 1:
        raise net.error(f"batch={batch} must be at least 1", "batch")
    if not 1 <= subdivisions <= batch:
        raise net.error(f"subdivisions={subdivisions} must be from 1 to batch={batch}", "subdivisions")
    policy = net.get_str("policy", "constant").lower()
    if policy not in POLICIES:
        raise net.error(f"unknown learning-rate policy '{policy}' (known: {', '.join(POLICIES)})", "policy")
    max_batches = net.get_int("max_batches", 0)
    if max_batches < 0:
        raise net.error(f"max_batches={max_batches} must not be negative", "max_batches")
    if policy == "poly" and max_batches == 0:
        raise net.error("policy=poly needs max_batches", "policy")
    values = dict(
        batch=batch,
        subdivisions=subdivisions,
        policy=policy,
        max_batches=max_batches,
        learning_rate=net.get_float("learning_rate", 0.001),
        momentum=net.get_float("momentum", 0.9),
        decay=net.get_float("decay", 0.0001),
        burn_in=max(0, net.get_int("burn_in", 0)),
        power=net.get_float("power", 4.0),
        clip=net.get_float("clip", 0.0),
        adam=net.get_flag("adam"),
        layer_rates=tuple(_layer_rate(s) for s in sections[1:]),
        stop_backward=max((i for i, s in enumerate(sections[1:]) if s.get_flag("stopbackward")), default=-1),
    )
    if values["adam"]:
        values.update(b1=net.get_float("B1", 0.9), b2=net.get_float("B2", 0.999), eps=net.get_float("eps", 1e-7))
    if policy in ("step", "sigmoid"):
        values.update(step=net.get_int("step", 1))
        if values["step"] < 1:
            raise net.error(f"step={values['step']} must be at least 1", "step")
    if policy == "step":
        values.update(scale=net.get_float("scale", 1.0))
    if policy in ("exp", "sigmoid"):
        values.update(gamma=net.get_float("gamma", 1.0))
    if policy == "steps":
        values.update(_steps(net))
    values["augment"] = _augment(net, spec)
    return TrainSettings(**values)


def _layer_rate(section: Section) -> float:
    rate = section.get_float("learning_rate", 1.0)
    if rate < 0:
        raise section.error(f"learning_rate={rate} must not be negative", "learning_rate")
    return rate


def _steps(net: Section) -> dict:
    if "steps" not in net.options or "scales" not in net.options:
        raise net.error("policy=steps needs both steps= and scales=", "policy")
    steps = net.get_int_list("steps")
    raw = net.get_str("scales")
    try:
        scales = [float(part) for part in raw.split(",") if part]
    except ValueError:
        raise net.error(f"scales={raw} is not a comma-separated list of numbers", "scales") from None
    if len(steps) != len(scales):
        raise net.error(f"steps= lists {len(steps)} values but scales= lists {len(scales)}", "scales")
    return {"steps": tuple(steps), "scales": tuple(scales)}


def _augment(net: Section, spec: NetworkSpec) -> Augment:
    w = spec.width
    max_crop = net.get_int("max_crop", 2 * w)
    min_crop = net.get_int("min_crop", w)
    max_ratio = net.get_float("max_ratio", max_crop / w)
    min_ratio = net.get_float("min_ratio", min_crop / w)
    low, high = int(min_ratio * w), int(max_ratio * w)
    if low < 1 or high < low:
        raise net.error(
            f"the crop sizes run from {low} to {high} pixels: give min_crop <= max_crop, both positive",
            "min_crop" if "min_crop" in net.options else "max_crop",
        )
    aspect = net.get_float("aspect", 1.0)
    saturation, exposure = net.get_float("saturation", 1.0), net.get_float("exposure", 1.0)
    for key, value in (("aspect", aspect), ("saturation", saturation), ("exposure", exposure)):
        if value <= 0:
            raise net.error(f"{key}={value} must be positive", key)
    return Augment(
        low,
        high,
        angle=net.get_float("angle", 0.0),
        aspect=aspect,
        hue=net.get_float("hue", 0.0),
        saturation=saturation,
        exposure=exposure,
        flip=net.get_flag("flip", 1),
        center=net.get_flag("center"),
    )
