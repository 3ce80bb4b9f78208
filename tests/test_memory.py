"""The memory budget: a plan's buffers are added up before any is allocated (and the count is what
allocating them takes), an input too big is refused in one line naming the layer, the bytes and
the budget, and a large but reasonable input still runs."""

from __future__ import annotations

import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import engine
from engine import memory, plan
from engine.memory import MemoryBudgetError
from engine.parallel import threads
from engine.weights import random_params
from support import CFG_DIR, ROOT, SMALL_CFG, shared_path
from tdn_cli.main import main


@pytest.mark.parametrize("name, size", [("tiny", 512), ("resnet18", 512), ("darknet19", 448)])
def test_the_dry_run_counts_what_the_plan_allocates(name, size):
    """tracemalloc sees numpy's allocations: building the steps for real takes what the dry run
    counted (activations, scratch, the weights' layouts the plan is the first to need, a plan's
    own copies of split weights), to within 1 %."""
    spec = engine.parse_network(CFG_DIR / f"{name}.cfg")
    net = engine.Network(spec, random_params(spec))
    last = len(spec.layers) - 1
    with memory.counting() as count:
        plan._steps(spec, net._packed, 2, (size, size), last, frozenset({last}), threads())
    tracemalloc.start()
    try:
        steps = plan._steps(spec, net._packed, 2, (size, size), last, frozenset({last}), threads())
        allocated, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(steps) == len(spec.layers) and count[0] > 50 << 20
    assert abs(allocated - count[0]) < 0.01 * count[0]


def test_plans_share_the_weights_layouts_and_count_them_once():
    """The direct steps' panels and Winograd's transformed filters are made by the first plan that
    needs them and shared by the next (another input size): not copied, and not counted again."""
    spec = engine.parse_network(CFG_DIR / "darknet19.cfg")
    last = len(spec.layers) - 1
    params = random_params(spec)

    def dry_run(net, size):
        with memory.counting() as count:
            plan._steps(spec, net._packed, 1, (size, size), last, frozenset({last}), threads())
        return count[0]

    def layouts(net):
        return {
            (i, name): array
            for i, packed in enumerate(net._packed)
            if hasattr(packed, "layouts")
            for name, array in packed.layouts.items()
        }

    shared, fresh = engine.Network(spec, params), engine.Network(spec, params)
    first = plan._steps(spec, shared._packed, 1, (256, 256), last, frozenset({last}), threads())
    made_first = layouts(shared)
    assert {name for _, name in made_first} == {"panels", "winograd"}
    counted_shared, counted_fresh = dry_run(shared, 320), dry_run(fresh, 320)
    second = plan._steps(spec, shared._packed, 1, (320, 320), last, frozenset({last}), threads())
    plan._steps(spec, fresh._packed, 1, (320, 320), last, frozenset({last}), threads())
    reused = sum(array.nbytes for key, array in made_first.items() if key in layouts(fresh))
    assert reused > 10 << 20 and counted_fresh - counted_shared == reused
    assert all(layouts(shared)[key] is array for key, array in made_first.items())  # not remade
    assert sum(a.panels is b.panels for a, b in zip(first, second) if hasattr(a, "panels")) > 5


@pytest.fixture
def huge_cfg(tmp_path):
    """Tiny Darknet's cfg at 60000x60000 (tiny's weights still fit: the size is not in them)."""
    text = (CFG_DIR / "tiny.cfg").read_text().replace("width=224", "width=60000").replace("height=224", "height=60000")
    path = tmp_path / "huge.cfg"
    path.write_text(text)
    return path


def test_a_huge_input_is_refused_in_one_line_before_any_allocation(capsys, huge_cfg, random_weights):
    code = main(
        ["classify", str(huge_cfg), str(random_weights("tiny")), str(shared_path("darknet", "data", "dog.jpg"))]
    )
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"tdn: error: {huge_cfg}: a 80000x60000 input (batch 1; the most, ")
    assert "for layer 5 [convolutional] (" in line and "huge.cfg:" in line and "TiB, over the memory budget of " in line


def test_as_a_process_too_no_traceback_and_no_memory_taken(huge_cfg, random_weights, tmp_path):
    image = tmp_path / "grey.png"
    from PIL import Image

    Image.new("RGB", (64, 48), (128, 128, 128)).save(image)
    run = subprocess.run(
        [sys.executable, "-m", "tdn_cli.main", "classify", str(huge_cfg), str(random_weights("tiny")), str(image)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "TDN_KERNELS": "portable"},
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "over the memory budget" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_tiny_at_1024_still_runs_under_the_default_budget(random_weights):
    net = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    probs = net.predict(np.random.default_rng(0).random((1024, 1024, 3), dtype=np.float32))
    assert probs.shape == (1000,) and abs(float(probs.sum()) - 1) < 1e-4


def test_the_budget_is_yours_to_set(capsys, monkeypatch, random_weights, tmp_path):
    image = tmp_path / "grey.png"
    from PIL import Image

    Image.new("RGB", (64, 48), (128, 128, 128)).save(image)
    argv = ["classify", str(CFG_DIR / "tiny.cfg"), str(random_weights("tiny")), str(image)]
    monkeypatch.setenv("TDN_MEMORY_BUDGET", "")  # unset; what --memory sets is undone after
    assert main(["--memory", "20M", *argv]) == 1
    assert "over the memory budget of 20.0 MiB (TDN_MEMORY_BUDGET=20M)" in capsys.readouterr().err
    monkeypatch.setenv("TDN_MEMORY_BUDGET", "2G")
    assert main(argv) == 0
    capsys.readouterr()
    monkeypatch.setenv("TDN_MEMORY_BUDGET", "lots")
    assert main(argv) == 1
    assert capsys.readouterr().err.startswith("tdn: error: TDN_MEMORY_BUDGET: memory size 'lots': give bytes")
    assert main(["--memory", "2X", *argv]) == 1


@pytest.mark.parametrize(
    "text, size",
    [
        ("4G", 4 << 30),
        ("512M", 512 << 20),
        ("1.5g", 3 << 29),
        ("300000", 300000),
        ("64KiB", 64 << 10),
        ("2 GB", 2 << 30),
    ],
)
def test_sizes_read_as_people_write_them(text, size):
    assert memory.parse_size(text) == size


def test_bench_valid_and_teach_are_held_to_it_too(capsys, monkeypatch, random_weights, tmp_path):
    monkeypatch.setenv("TDN_MEMORY_BUDGET", "20M")
    assert main(["bench", str(CFG_DIR / "tiny.cfg"), "--runs", "1", "--kernels", "portable"]) == 1
    assert "over the memory budget" in capsys.readouterr().err
    folder = tmp_path / "photos" / "cats"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (300, 200), (90, 120, 40)).save(folder / "a.png")
    names = tmp_path / "names.txt"
    names.write_text("cats\n" + "".join(f"class {k}\n" for k in range(1, 1000)))
    assert (
        main(
            [
                "valid",
                str(CFG_DIR / "tiny.cfg"),
                str(random_weights("tiny")),
                str(tmp_path / "photos"),
                "--names",
                str(names),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "over the memory budget" in out and "images: 0" in out  # skipped, with the reason
    Image.new("RGB", (300, 200), (40, 90, 160)).save(tmp_path / "photos" / "b.png")
    (tmp_path / "photos" / "dogs").mkdir()
    Image.new("RGB", (300, 200), (200, 90, 160)).save(tmp_path / "photos" / "dogs" / "c.png")
    out_dir = tmp_path / "taught"
    assert (
        main(
            [
                "teach",
                str(tmp_path / "photos"),
                "--out",
                str(out_dir),
                "--base",
                str(CFG_DIR / "tiny.cfg"),
                "--weights",
                str(random_weights("tiny")),
            ]
        )
        != 0
    )
    err = capsys.readouterr().err
    assert "over the memory budget" in err and len(err.strip().splitlines()) == 1
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_a_network_too_big_at_its_own_size_is_refused_at_load_in_the_app(tmp_path):
    """The scheduler refuses the model (the window shows model_failed as its banner) and stays up."""
    from tdn_gui.worker.scheduler import Reports, Scheduler

    cfg = tmp_path / "wide.cfg"
    cfg.write_text(SMALL_CFG.replace("width=32", "width=60000").replace("height=32", "height=60000"))
    weights = tmp_path / "wide.weights"
    engine.write_random_weights(cfg, weights, seed=1)
    failed, loaded, answered = [], [], threading.Event()
    scheduler = Scheduler(
        Reports(
            model_failed=lambda m: (failed.append(m), answered.set()),
            model_loaded=lambda i: (loaded.append(i), answered.set()),
        )
    )
    scheduler.start()
    try:
        scheduler.load_model(cfg, weights)
        assert answered.wait(60)
        assert not loaded and "over the memory budget" in failed[0] and "wide.cfg" in failed[0]
        assert scheduler.is_running()
    finally:
        scheduler.stop()


def test_the_refusal_is_a_memory_budget_error_and_an_engine_error(huge_cfg, random_weights):
    net = engine.Network.load(huge_cfg, random_weights("tiny"))
    with pytest.raises(MemoryBudgetError):
        net.check_memory(1, 60000, 60000)
    assert issubclass(MemoryBudgetError, engine.EngineError)


def test_buffers_start_on_a_cache_line(random_weights):
    """memory.empty's arrays start on a 64-byte line whatever numpy hands out (a kernel's 16-float
    stores then touch one line, and two threads' blocks of filters never share one), and are the
    shape and type asked; a direct step's per-thread scratch rows start on a line of their own."""
    for shape, dtype in [((3,), np.float32), ((5, 7), np.float32), (11, np.uint8), ((2, 3, 4), np.float64)]:
        for _ in range(8):
            a = memory.empty(shape, dtype)
            assert a.ctypes.data % memory.ALIGNMENT == 0 and a.dtype == dtype and a.flags.c_contiguous
            assert a.shape == (shape if isinstance(shape, tuple) else (shape,)) and a.flags.writeable
    net = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    direct = [step for step in net.plan(1, 64, 64) if type(step).__name__ == "DirectStep"]
    assert len(direct) == 15  # the 1000-class conv runs after its avgpool
    for step in direct:
        arrays = [step.out, step.panels] + list(step.acc) + ([step.padded] if step.padded is not None else [])
        assert all(a.ctypes.data % memory.ALIGNMENT == 0 for a in arrays)


@pytest.mark.parametrize("prepare", ["letterbox", "resize", "resize_min", "fit_input"])
def test_preprocessing_a_huge_size_is_refused_in_one_line(prepare):
    """A cfg with height=2147483648 fed through the public preprocessing: the budget's one-line
    error before anything is allocated, not numpy's MemoryError."""
    img = np.zeros((12, 16, 3), np.float32)
    calls = {
        "letterbox": lambda: engine.letterbox(img, 224, 2147483648),
        "resize": lambda: engine.resize(img, 224, 2147483648),
        "resize_min": lambda: engine.resize_min(img, 2147483648),
        "fit_input": lambda: engine.fit_input(img, "stretch", 224, 2147483648, False),
    }
    with pytest.raises(MemoryBudgetError) as info:
        calls[prepare]()
    assert "\n" not in str(info.value) and "over the memory budget" in str(info.value)
