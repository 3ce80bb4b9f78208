"""darknet cfg text for tests, section by section: `net(8, 8) + conv(16) + maxpool(2, 2) + AVGPOOL`.

Each function returns one section (with a blank line before it), so a test's network reads as
the list of its layers. Options a function has no argument for go in **options, written as given.
"""

from __future__ import annotations


def _options(options: dict) -> str:
    return "".join(f"{key}={value}\n" for key, value in options.items())


def net(h, w, c=3, **options):
    """[net] of h x w x c; options: batch=, subdivisions=, learning_rate=, ..."""
    return f"[net]\nheight={h}\nwidth={w}\nchannels={c}\n" + _options(options)


def conv(filters, size=3, stride=1, padding=None, groups=1, bn=1, act="leaky", **options):
    """padding in pixels; by default size // 2 (darknet's pad=1)."""
    padding = size // 2 if padding is None else padding
    return (
        f"\n[convolutional]\nfilters={filters}\nsize={size}\nstride={stride}\npadding={padding}\n"
        f"groups={groups}\nbatch_normalize={bn}\nactivation={act}\n" + _options(options)
    )


def maxpool(size, stride, padding=None):
    """padding: darknet's default (size - 1) when None."""
    return f"\n[maxpool]\nsize={size}\nstride={stride}\n" + ("" if padding is None else f"padding={padding}\n")


def route(*layers):
    return f"\n[route]\nlayers={','.join(map(str, layers))}\n"


def shortcut(source, act="linear", alpha=1.0, beta=1.0):
    return f"\n[shortcut]\nfrom={source}\nactivation={act}\nalpha={alpha}\nbeta={beta}\n"


def connected(outputs, bn=0, act="leaky"):
    return f"\n[connected]\noutput={outputs}\nbatch_normalize={bn}\nactivation={act}\n"


def softmax(groups=1, temperature=1.0):
    return f"\n[softmax]\ngroups={groups}\ntemperature={temperature}\n"


def dropout(probability=0.3):
    return f"\n[dropout]\nprobability={probability}\n"


def cost(kind="sse", scale=1.0):
    return f"\n[cost]\ntype={kind}\nscale={scale}\n"


AVGPOOL, DROPOUT, COST = "\n[avgpool]\n", dropout(), "\n[cost]\n"
