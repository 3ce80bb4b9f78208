"""`tdn classify` and `tdn valid` on a Dask cluster (the optional extra `tdn[cluster]`).

The client sends file paths in batches, never pixels; each worker process loads the network once
(a per-process cache, so its compiled kernels load once too), decodes and classifies its batches,
and sends back each image's top classes or the one line saying why it failed. The paths must be
readable on every worker: a shared filesystem, or the same files at the same place.

Dask reschedules the batches of a worker that dies on another one, and a batch's result reaches
the client once, so every image is counted once. Results come back as batches finish; `run_batches`
hands them on in input order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import EngineError

INSTALL = "pip install 'tdn[cluster]'"
CONNECT_SECONDS = 10  # how long to try an existing scheduler before saying it is unreachable
BATCH = 32  # images per task; see README "More than one machine" for the measurement


class ClusterError(EngineError):
    """A cluster that cannot be used: no Dask, a bad address, an unreachable scheduler."""


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build the classifier: paths it can read, and the settings."""

    cfg: str
    weights: str
    names: tuple[str, ...] | None
    resize: str = "min"
    tta: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """One image's answer from a worker: its top classes, or why it failed."""

    index: int  # its place in the input
    top: tuple[tuple[int, str, float], ...] = ()
    seconds: float = 0.0
    error: str | None = None


# --- the client -------------------------------------------------------------------------------


def require() -> None:
    """ClusterError (one line: how to install it) when Dask's distributed scheduler is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ClusterError(f"--cluster needs Dask's distributed scheduler: {INSTALL}") from None


class Cluster:
    """`with Cluster("local:2") as cluster:` a Dask client, and the LocalCluster it started."""

    def __init__(self, address: str, timeout: float = CONNECT_SECONDS):
        require()
        import distributed

        self.address = address
        self._local = None
        if address.startswith("local:"):
            workers = _worker_count(address)
            threads = max(1, (os.cpu_count() or 1) // workers)
            # One thread per worker for Dask; the engine's kernels get the cores shared out (its
            # BLAS stays single-threaded inside them, see engine/parallel.py). Quiet logs: a
            # worker's heartbeat meeting the closing scheduler logs a traceback at ERROR level
            # that means nothing to a user (a failed image or a lost worker is reported anyway)
            # On 127.0.0.1 only, and no dashboard: a local cluster is this machine's business. The
            # scheduler serves its health routes over HTTP even so, on port 8787 unless told: a
            # free port, so that a second tdn (or a dashboard of the user's) meets no warning.
            self._local = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                env={"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1"},
            )
            self.client = distributed.Client(self._local)
        elif address.startswith("tcp://"):
            try:
                self.client = distributed.Client(address, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise ClusterError(
                    f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({type(exc).__name__})"
                ) from None
        else:
            raise ClusterError(
                f"--cluster {address}: give tcp://HOST:PORT (a running `dask scheduler`) or "
                f"local:N (N worker processes on this machine)"
            )

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info()["workers"])

    def close(self) -> None:
        self.client.close()
        if self._local is not None:
            self._local.close()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _worker_count(address: str) -> int:
    try:
        count = int(address.removeprefix("local:"))
    except ValueError:
        count = 0
    if count < 1:
        raise ClusterError(f"--cluster {address}: local:N needs N, a number of workers of at least 1")
    return count


def run_batches(
    cluster: Cluster,
    model: ModelSpec,
    paths: list[str],
    top: int,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Answer]:
    """Every path's Answer, in input order, each as soon as it and all before it are back.
    progress(images) after each batch; KeyboardInterrupt cancels what is still running."""
    from distributed import as_completed

    futures = [
        cluster.client.submit(classify_paths, model, start, paths[start : start + batch], top, pure=False, retries=1)
        for start in range(0, len(paths), batch)
    ]
    done: dict[int, Answer] = {}
    following = 0
    try:
        for future in as_completed(futures):
            answers = future.result()
            future.release()
            for answer in answers:
                done[answer.index] = answer
            if progress is not None:
                progress(len(answers))
            while following in done:
                yield done.pop(following)
                following += 1
    except BaseException:
        cluster.client.cancel(futures)
        raise


# --- the workers ------------------------------------------------------------------------------

_classifiers: dict[ModelSpec, object] = {}  # per worker process: the network loads once


def classify_paths(model: ModelSpec, first: int, paths: list[str], top: int) -> list[Answer]:
    """On a worker: decode and classify paths (input positions first, first + 1, ...); images of
    one input shape go through the network together, as `tdn valid` batches them."""
    import time

    import numpy as np

    from .classify import Classifier
    from .image import load_image
    from .network import Network

    classifier = _classifiers.get(model)
    if classifier is None:
        net = Network.load(model.cfg, model.weights)
        names = list(model.names) if model.names is not None else None
        classifier = _classifiers[model] = Classifier(net, names, model.resize, model.tta)
    answers: list[Answer] = []
    groups: dict[tuple, list[tuple[int, object]]] = {}
    for offset, path in enumerate(paths):
        try:
            x = classifier.preprocess(load_image(path, classifier.decode_size))
        except EngineError as exc:
            answers.append(Answer(first + offset, error=str(exc)))
            continue
        groups.setdefault(x.shape, []).append((first + offset, x))
    for members in groups.values():
        start = time.perf_counter()
        predictions = classifier.classify_batch(np.stack([x for _, x in members]))
        each = (time.perf_counter() - start) / len(members)
        for (index, _), prediction in zip(members, predictions):
            answers.append(Answer(index, tuple(prediction.top(top)), each))
    return answers
