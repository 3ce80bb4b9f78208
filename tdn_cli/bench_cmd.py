"""`tdn bench MODEL|CFG [WEIGHTS]`: latency, throughput and which layer costs what, against this
machine's FMA peak; `tdn bench --peak`: that peak alone."""

from __future__ import annotations

import time

import numpy as np

from .common import add_model_arguments, add_tta_argument


def add_parser(subparsers):
    p = subparsers.add_parser(
        "bench",
        help="time a network: latency, throughput, per-layer",
        description="Time a network on random input. Without weights a .cfg is "
        "timed with random weights (same work as real ones).",
    )
    add_model_arguments(p, inputs=None, optional=True)
    p.add_argument("weights_path", nargs="?", metavar="WEIGHTS", help="weights file for a .cfg")
    p.add_argument("--runs", type=int, default=30, help="timed runs per figure (default 30)")
    p.add_argument("--batch", type=int, default=16, help="batch size for the throughput figure (default 16)")
    p.add_argument("--size", metavar="WxH", help="input size (default: the cfg's)")
    p.add_argument("--no-layers", action="store_true", help="skip the per-layer time table")
    p.add_argument(
        "--peak",
        action="store_true",
        help="measure this machine's float32 FMA throughput (per core and on all threads, for each "
        "vector width the CPU has): the ceiling the GFLOP/s figures are shares of",
    )
    add_tta_argument(p)
    p.add_argument(
        "--kernels",
        choices=("compiled", "portable"),
        default="compiled",
        help="which kernels to time: the compiled ones (compiled first if this install has "
        "not yet: once, with a progress bar) or the portable numpy ones (default: compiled)",
    )
    p.set_defaults(func=run)
    return p


def _network(args):
    import engine
    from engine import registry
    from engine.weights import random_params

    from .summary_cmd import cfg_for

    weights = args.weights or args.weights_path
    if weights or args.model in registry.MODELS:
        cfg, weights_file = registry.resolve(args.model, weights)
        return engine.Network.load(cfg, weights_file), str(weights_file)
    spec = engine.parse_network(cfg_for(args.model))
    return engine.Network(spec, random_params(spec)), "random weights"


def median_ms(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3), float(np.percentile(times, 90) * 1e3)


def run(args) -> int:
    import engine
    from engine import kernels
    from engine.parallel import threading_layer

    from .common import compile_kernels
    from .summary_cmd import parse_size

    if args.runs < 1 or args.batch < 1:
        raise engine.EngineError("--runs and --batch must be at least 1")
    if args.model is None and not args.peak:
        raise engine.EngineError("give a MODEL or a .cfg to time, or --peak for the machine's FMA throughput")
    from engine.kernels import peak as fma

    peaks = fma.measure(engine.threads())  # the ceiling every GFLOP/s figure below is a share of
    peak = fma.best(peaks)
    if args.peak:
        print(peak_table(peaks))
        if args.model is None:
            return 0
        print()
    if args.kernels == "compiled" and compile_kernels(quiet=True) != 0:
        raise engine.EngineError(
            "the compiled kernels did not compile; `tdn bench --kernels portable` times the portable ones"
        )
    kernels.use(args.kernels)
    start = time.perf_counter()
    net, source = _network(args)
    load_s = time.perf_counter() - start
    w, h = parse_size(args.size) if args.size else net.input_size
    rng = np.random.default_rng(0)
    one = rng.random((1, h, w, 3), dtype=np.float32)
    start = time.perf_counter()
    net.predict(one)
    first_s = time.perf_counter() - start
    for _ in range(3):
        net.predict(one)
    lat, lat90 = median_ms(lambda: net.predict(one), args.runs)
    batch = rng.random((args.batch, h, w, 3), dtype=np.float32)
    net.predict(batch)
    bat, _ = median_ms(lambda: net.predict(batch), max(3, args.runs // 4))
    print(f"{net.name}: {w}x{h}, {source}")
    print(f"kernels: {kernels.status().describe()}")
    if args.kernels == "compiled":
        print(f"threads: {engine.threads()} ({threading_layer()} layer)")
    else:
        print("threads: numpy's BLAS for the GEMMs, the rest on one thread")
    print(
        f"load: {load_s * 1e3:.0f} ms, first prediction: {first_s * 1e3:.0f} ms (includes buffer set-up "
        "and loading the kernels)"
    )
    print(f"latency, batch 1: median {lat:.2f} ms, p90 {lat90:.2f} ms ({1e3 / lat:.1f} images/s)")
    print(f"throughput, batch {args.batch}: {args.batch * 1e3 / bat:.1f} images/s ({bat:.1f} ms per batch)")
    from engine.summary import summarize

    rate = summarize(net.spec).bflops / lat * 1e3
    print(
        f"a whole pass, batch 1: {rate:.0f} GFLOP/s, {rate / peak.all_threads:.0%} of this machine's FMA peak "
        f"({peak.all_threads:.0f} GFLOP/s: {peak.lanes}-float vectors on {peak.threads} threads)"
    )
    if args.tta:
        print(tta_cost(net, args.tta, (h, w), args.runs))
    if not args.no_layers:
        print()
        # a batch's plan also runs one image (engine/plan.py's PlanCache) but may choose other
        # steps (Winograd on 16 images' tiles): the table is of the batch-1 plan, as the latency
        net.forget_plans()
        net.predict(one)
        print(layer_table(net, one, args.runs, peak))
    return 0


def tta_cost(net, tta: str, size: tuple[int, int], runs: int) -> str:
    """What test-time augmentation costs per image: a 4:3 photo classified with it and without,
    preprocessing included, medians of interleaved runs."""
    import engine

    h, w = size
    photo = np.random.default_rng(1).random((h * 3, w * 4, 3), dtype=np.float32)
    plain = engine.Classifier(net, resize="min")
    augmented = engine.Classifier(net, resize="min", tta=tta)
    times: dict = {plain: [], augmented: []}
    for classifier in times:
        classifier.classify(photo)
    for _ in range(runs):
        for classifier, spent in times.items():
            start = time.perf_counter()
            classifier.classify(photo)
            spent.append(time.perf_counter() - start)
    one, more = (float(np.median(times[c]) * 1e3) for c in (plain, augmented))
    return (
        f"test-time augmentation {','.join(augmented.tta)}: {more:.2f} ms per image, {more / one:.2f}x "
        f"one view ({one:.2f} ms; a {w * 4}x{h * 3} photo, preprocessing included)"
    )


def peak_table(peaks) -> str:
    lines = [
        "FMA throughput (float32, fused multiply-add = 2 FLOPs), GFLOP/s:",
        f"{'vectors':<20}{'one core':>10}{'all ' + str(peaks[0].threads) + ' threads':>16}",
    ]
    for p in peaks:
        name = {8: "8 floats (256-bit)", 16: "16 floats (512-bit)"}.get(p.lanes, f"{p.lanes} floats")
        lines.append(f"{name:<20}{p.per_core:>10.0f}{p.all_threads:>16.0f}")
    return "\n".join(lines)


# How a conv's step computes it (engine/plan.py chooses): the register tiles of a width, Winograd, im2col + GEMM
CONV_METHODS = {"WinogradStep": "Winograd", "WinogradByFiltersStep": "Winograd", "ConvStep": "im2col + GEMM"}


def run_by(step) -> str:
    """A conv step's method: "tiles, 16 floats" (direct convolution, its vector width), Winograd or
    im2col + GEMM; nothing for other layers."""
    kind = type(step).__name__
    if kind == "DirectStep":
        return f"tiles, {step.lanes} floats"
    return CONV_METHODS.get(kind, "")


def layer_table(net, x, runs: int, peak=None) -> str:
    from engine.summary import summarize

    times = np.zeros((runs, len(net.spec.layers)))
    for r in range(runs):
        net.forward(x, observer=lambda i, s: times.__setitem__((r, i), s))
    per_layer = np.median(times, axis=0) * 1e3
    total = per_layer.sum()
    summary = summarize(net.spec)
    ceiling = peak.all_threads if peak is not None else None
    steps = net.plan(x.shape[0], x.shape[1], x.shape[2])
    lines = [
        f"{'layer':>5} {'type':<10}{'filters':>8}  {'size':<12}{'output':>18}{'BFLOPs':>8}{'ms':>8}{'%':>6}"
        + (f"{'GFLOP/s':>9}{'of peak':>8}" if ceiling else "")
        + "  run by"
    ]

    def speed(bflops: float, ms: float) -> str:
        if not ceiling or not bflops or ms <= 0:
            return ""
        rate = bflops / ms * 1e3
        if rate > ceiling:  # a layer that does less than its BFLOPs (see the note below)
            return f"{'':>9}{'fused':>8}"
        return f"{rate:9.0f}{rate / ceiling:8.0%}"

    for row, ms, step in zip(summary.rows, per_layer, steps):
        h, w, c = row.output
        flops = f"{row.bflops:8.3f}" if row.bflops else " " * 8
        used = speed(row.bflops, ms) or (" " * 17 if ceiling else "")
        lines.append(
            f"{row.index:>5} {row.kind:<10}{row.filters:>8}  {row.size:<12}{w:>6} x{h:>4} x{c:>5}"
            f"{flops}{ms:8.3f}{100 * ms / total:6.1f}{used}  {run_by(step)}".rstrip()
        )
    lines.append(f"{'':>5} {'total':<40}{summary.bflops:16.3f}{total:8.3f}{'':6}{speed(summary.bflops, total)}")
    lines.append(
        "(a pool done in the conv's step shows ~0 ms and the conv's time includes it: a [maxpool]\n"
        " fused into the conv before it, or an [avgpool] run before a linear 1x1 conv, which then\n"
        " costs a fraction of its BFLOPs)"
    )
    return "\n".join(lines)
