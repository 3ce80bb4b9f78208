"""Decoding a 24 MP camera JPEG for Tiny Darknet: whole (as darknet does) and at reduced scale
(engine.load_image's at_least, as `tdn classify` asks for), each in a process of its own so that
the peak memory (ru_maxrss) is the decode's; and what the classifier answers on each.

    python bench/bench_big_photo.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

CHILD = r"""
import json, resource, sys, time, tracemalloc
sys.path.insert(0, sys.argv[1])
import engine
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
at_least = None if sys.argv[3] == "none" else int(sys.argv[3])
start = time.perf_counter()
image = engine.load_image(sys.argv[2], at_least)
seconds = time.perf_counter() - start
traced = tracemalloc.get_traced_memory()[1]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": (peak - base) / 1024, "traced_mb": traced / 2**20,
                  "shape": list(image.shape)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from PIL import Image

    import engine

    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "camera.jpg"
        Image.open(SHARED / "darknet" / "data" / "dog.jpg").resize((6000, 4000), Image.Resampling.BICUBIC).save(
            photo, quality=92
        )
        net = engine.Network.load(ROOT / "cfg" / "tiny.cfg", SHARED / "weights" / "tiny.weights")
        names = engine.load_names(SHARED / "darknet" / "data" / "imagenet.shortnames.list", net.classes)
        classifier = engine.Classifier(net, names)
        print(
            f"a 6000x4000 JPEG ({photo.stat().st_size / 1e6:.1f} MB), Tiny Darknet "
            f"(at_least {classifier.decode_size}); medians of {args.runs} processes"
        )
        print("peak: the process's resident peak above its start (ru_maxrss), and the arrays' peak (tracemalloc)")
        print(f"{'decode':<12}{'size':>12}{'ms':>9}{'peak MB':>9}{'arrays MB':>11}  top-3")
        for at_least in ("none", str(classifier.decode_size)):
            runs = [
                json.loads(
                    subprocess.run(
                        [sys.executable, "-c", CHILD, str(ROOT), str(photo), at_least],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
                for _ in range(args.runs)
            ]
            h, w, _ = runs[0]["shape"]
            top = classifier.classify(engine.load_image(photo, None if at_least == "none" else int(at_least))).top(3)
            print(
                f"{'whole' if at_least == 'none' else 'reduced':<12}{f'{w}x{h}':>12}"
                f"{np.median([r['seconds'] for r in runs]) * 1e3:9.0f}{np.median([r['peak_mb'] for r in runs]):9.0f}"
                f"{np.median([r['traced_mb'] for r in runs]):11.1f}  "
                + ", ".join(f"{n} {100 * p:.1f}%" for _, n, p in top)
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
