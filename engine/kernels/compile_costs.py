"""What compiling each kernel costs: the order a compiler works through them and the CPU
seconds each takes (bench/bench_compile.py measures them), for sharing them between workers and
for the progress the app shows. Plain data, read without loading Numba."""

from __future__ import annotations

# What Tiny Darknet and Darknet Reference run on comes first; Winograd serves layers of many
# channels on large maps, conv_forward (im2col) the convs of several groups
KERNEL_SECONDS = {
    "direct_conv": 19.3,
    "direct_conv_wide": 19.4,
    "global_avgpool": 0.4,
    "softmax": 0.3,
    "resize_bilinear": 0.4,
    "maxpool": 0.4,
    "bias_activate": 0.4,
    "shortcut_add": 1.3,
    "winograd_conv": 9.4,
    "winograd_conv_by_filters": 7.1,
    "conv_forward": 4.5,
}


def progress_done(ready) -> float:
    """The share of the compile work that the kernels in `ready` stand for, 0..1."""
    return sum(KERNEL_SECONDS[n] for n in ready if n in KERNEL_SECONDS) / sum(KERNEL_SECONDS.values())
