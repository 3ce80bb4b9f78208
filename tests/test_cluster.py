"""tdn classify / valid on a real Dask LocalCluster (worker processes): the single-process figures,
a worker killed mid-run, a file that fails on a worker, an unreachable scheduler, Ctrl+C, and the
one line without the extra."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import engine
from support import CFG_DIR, ROOT, process_alive, shared_path
from tdn_cli.main import main

pytest.importorskip("distributed", reason="the cluster extra (pip install 'tdn[cluster]') is not installed")

from engine.cluster import Cluster, ClusterError, ModelSpec, run_batches  # noqa: E402
from engine.validate import Labeler, validate, validate_on_cluster  # noqa: E402

WAIT = 120  # seconds: a stall bound for process start-up, never a speed requirement


@pytest.fixture(scope="module")
def cluster():
    with Cluster("local:2") as c:
        yield c


@pytest.fixture(scope="module")
def tiny_on_workers(tiny, tiny_weights):
    """(Network, names, ModelSpec): the shared Tiny and how a worker loads it."""
    net, names = tiny
    return net, names, ModelSpec(str(CFG_DIR / "tiny.cfg"), str(tiny_weights), tuple(names))


@pytest.fixture(scope="module")
def labeler(tiny_on_workers):
    net, names, _ = tiny_on_workers
    return Labeler(engine.load_names(shared_path("darknet", "data", "imagenet.labels.list"), net.classes), names)


def test_valid_on_two_workers_gives_the_single_process_figures(cluster, tiny_on_workers, labeler):
    net, names, model = tiny_on_workers
    folder = shared_path("teach-dev")
    here = validate(engine.Classifier(net, names), folder, labeler)
    there = validate_on_cluster(cluster, model, folder, labeler, batch=8)
    assert there.workers == 2 and there.summary()["workers"] == 2
    assert (there.images, there.top1, there.top5) == (here.images, here.top1, here.top5) == (89, 53 / 89, 75 / 89)
    assert [r.path for r in there.rows] == [r.path for r in here.rows]  # input order
    for a, b in zip(here.rows, there.rows):
        assert [i for i, _, _ in a.top] == [i for i, _, _ in b.top]


def test_a_worker_killed_mid_run_loses_no_image_and_counts_none_twice(cluster, tiny_on_workers, labeler):
    _, _, model = tiny_on_workers
    folder = shared_path("teach-dev")
    killed = []

    pids = cluster.client.run(os.getpid)  # {worker address: its process}

    def kill_one_worker(result, total):
        if not killed:  # after the first batch: others still to do
            pid = pids[sorted(pids)[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    result = validate_on_cluster(cluster, model, folder, labeler, progress=kill_one_worker, batch=4)
    assert killed
    assert result.images == 89 and len({r.path for r in result.rows}) == 89
    assert (result.top1, result.top5) == (53 / 89, 75 / 89)
    cluster.client.wait_for_workers(2, timeout=WAIT)  # the nanny starts a new one


def test_a_file_that_fails_on_a_worker_is_skipped_with_its_reason(cluster, tiny_on_workers, tmp_path):
    _, _, model = tiny_on_workers
    good = shared_path("darknet", "data", "dog.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:600])
    answers = list(run_batches(cluster, model, [str(good), str(broken), str(tmp_path / "gone.jpg")], 1, batch=2))
    assert [a.index for a in answers] == [0, 1, 2]
    assert answers[0].top[0][1] == "malamute" and answers[0].error is None
    assert "truncated or corrupt" in answers[1].error and "no such file" in answers[2].error


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_on_a_cluster_prints_what_one_process_prints(capsys, tiny_weights, imagenet_names, tmp_path):
    photos = [shared_path("darknet", "data", f"{n}.jpg") for n in ("dog", "eagle", "giraffe", "horses", "person")]
    missing = tmp_path / "missing.jpg"
    argv = [
        "classify",
        "tiny",
        "--weights",
        tiny_weights,
        "--names",
        imagenet_names,
        *photos[:2],
        missing,
        *photos[2:],
        "--json",
    ]
    code_here, here, _ = run_cli(capsys, *argv)
    code_there, there, err = run_cli(capsys, *argv, "--cluster", "local:2")
    assert code_here == code_there == 1
    assert err.strip().splitlines()[-1] == f"tdn: error: cannot read image {missing}: no such file"

    here, there = ([json.loads(line) for line in text.splitlines()] for text in (here, there))
    assert [r["image"] for r in there] == [r["image"] for r in here] and len(here) == 5  # input order
    for a, b in zip(here, there):
        assert [t["index"] for t in a["top"]] == [t["index"] for t in b["top"]]
        assert max(abs(t["prob"] - u["prob"]) for t, u in zip(a["top"], b["top"])) < 1e-5  # batched there


def test_a_local_cluster_listens_on_127_0_0_1_and_leaves_port_8787_alone():
    """The scheduler's HTTP routes take a free port: a dashboard already on 8787 (the user's,
    or a second tdn's) costs no warning, and nothing listens beyond this machine."""
    held = socket.socket()
    try:
        held.bind(("127.0.0.1", 8787))
        held.listen()
    except OSError:
        pass  # something holds it already: the same situation
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Cluster("local:1") as local:
                info = local.client.scheduler_info()
    finally:
        held.close()
    assert not [w for w in caught if "8787" in str(w.message)]
    assert info["address"].startswith("tcp://127.0.0.1:")
    assert all(port != 8787 for port in info["services"].values())
    assert all(worker.startswith("tcp://127.0.0.1:") for worker in info["workers"])


def test_an_unreachable_scheduler_is_one_line_within_the_timeout():
    start = time.monotonic()
    with pytest.raises(ClusterError, match=r"^cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9 within 2 s"):
        Cluster("tcp://127.0.0.1:9", timeout=2)
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("address", ["local:0", "local:two", "ssh://host"])
def test_a_bad_address_says_what_to_give(address):
    with pytest.raises(ClusterError, match=r"^--cluster "):
        Cluster(address)


def test_without_the_extra_one_line_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['distributed'] = None; from tdn_cli.main import main; "
        f"sys.exit(main(['valid', 'tiny', '--weights', 'x.weights', {str(tmp_path)!r}, '--cluster', 'local:2']))"
    )
    (tmp_path / "x.weights").write_bytes(b"")
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.strip() == (
        "tdn: error: --cluster needs Dask's distributed scheduler: pip install 'tdn[cluster]'"
    )


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_ctrl_c_cancels_and_leaves_no_worker_behind(tiny_weights, imagenet_names, tmp_path):
    photos = tmp_path / "photos" / "n02110063"  # malamute's WordNet id: labelled
    photos.mkdir(parents=True)
    source = shared_path("darknet", "data", "dog.jpg")
    for k in range(5000):  # minutes of work: still running at Ctrl+C
        (photos / f"dog{k:04}.jpg").symlink_to(source)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tdn_cli.main",
            "valid",
            "tiny",
            "--weights",
            str(tiny_weights),
            "--names",
            str(imagenet_names),
            "--labels",
            str(shared_path("darknet", "data", "imagenet.labels.list")),
            str(tmp_path / "photos"),
            "--cluster",
            "local:2",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a test run started in the background (`cmd &` in a script) ignores SIGINT, and so would tdn
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 2 * WAIT
    workers: set[int] = set()
    # the 2 worker processes and multiprocessing's resource tracker (the nannies live in tdn's process)
    while time.monotonic() < deadline and len(workers) < 3 and process.poll() is None:
        time.sleep(0.5)
        workers = _descendants(process.pid)
    if len(workers) < 3:
        process.kill()
        out, err = process.communicate(timeout=WAIT)
        pytest.fail(f"the local cluster never started (exit {process.returncode}): {err[-2000:]}")
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "tdn: interrupted" in err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(process_alive(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if process_alive(p)], "orphan worker processes"
