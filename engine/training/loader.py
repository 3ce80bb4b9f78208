"""Batches of training images, decoded and augmented beside the engine.

A producer thread fills a bounded queue (DEPTH batches ahead, so the engine never waits on a
decoder while memory stays bounded); a small pool of decoder threads does the photos of a batch
(OpenCV's decoder, warps and colour conversions let go of the GIL). Each image's random choices come from a
generator seeded by (seed, its batch's place in the run), so a run is the same whatever the
threads do.
An unreadable image is skipped and counted, and the next one takes its place.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..image import ImageError
from .augment import augment_image, distort_colors, draw, plain, read_rgb_bytes, to_unit
from .data import Dataset
from .settings import Augment
from .trainer import TrainingError

DEPTH = 3  # batches decoded ahead of the engine
DECODERS = 2  # threads decoding the photos of a batch


class Loader:
    def __init__(
        self,
        data: Dataset,
        width: int,
        height: int,
        batch: int,
        augment: Augment | None,
        in_order: bool = False,
        seed: int = 0,
        start: int = 0,
    ):
        self.data, self.w, self.h, self.batch = data, width, height, batch
        self.augment, self.in_order, self.seed = augment, in_order, seed
        self.position = start  # images handed out so far (the run's place in its order)
        self.skipped: dict[str, str] = {}  # path -> why it could not be read
        self._queue: queue.Queue = queue.Queue(maxsize=DEPTH)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(DECODERS, thread_name_prefix="tdn-decoder")
        self._thread = threading.Thread(target=self._produce, name="tdn-loader", daemon=True)
        self._thread.start()

    @staticmethod
    def bytes_needed(batch: int, width: int, height: int) -> int:
        """What the queue and the batch being built hold at most."""
        return (DEPTH + 2) * batch * width * height * 3 * 4

    # --- the order ---------------------------------------------------------------------------
    def _index(self, position: int) -> int:
        """The dataset index at a place in the run: the list's order, or a new random order for
        each pass over the data (every image once a pass)."""
        n = len(self.data)
        if self.in_order:
            return position % n
        epoch, offset = divmod(position, n)
        if getattr(self, "_epoch", None) != epoch:
            self._epoch = epoch
            self._permutation = np.random.default_rng([self.seed, epoch]).permutation(n)
        return int(self._permutation[offset])

    # --- the producer ------------------------------------------------------------------------
    def _fill(self, x, slots, places, draws) -> list:
        """Images `places` [(position, index)] into x[slots]: [(slot, index, error or None)]."""
        done = []
        for slot, (position, index) in zip(slots, places):
            try:
                img = read_rgb_bytes(self.data.paths[index])
            except ImageError as exc:
                done.append((slot, index, str(exc)))
                continue
            if self.augment is None:
                x[slot] = plain(to_unit(img), self.w, self.h)
            else:
                crop = augment_image(img, self.augment, draws, slot, self.w, self.h)
                x[slot] = to_unit(crop) if crop.dtype == np.uint8 else crop
            done.append((slot, index, None))
        return done

    def _next_batch(self):
        x = np.empty((self.batch, self.h, self.w, 3), np.float32)
        labels = np.empty(self.batch, np.int64)
        rng = np.random.default_rng([self.seed, self.position])
        draws = draw(rng, self.augment, self.batch) if self.augment is not None else None
        free, failures_in_a_row = list(range(self.batch)), 0
        while free:
            places = [(p, self._index(p)) for p in range(self.position, self.position + len(free))]
            self.position += len(free)
            chunks = np.array_split(np.arange(len(free)), DECODERS)
            jobs = [
                self._pool.submit(self._fill, x, [free[i] for i in c], [places[i] for i in c], draws)
                for c in chunks
                if len(c)
            ]
            still_free = []
            for job in jobs:
                for slot, index, error in job.result():
                    if error is None:
                        labels[slot] = self.data.labels[index]
                        failures_in_a_row = 0
                        continue
                    self.skipped[self.data.paths[index]] = error
                    still_free.append(slot)
                    failures_in_a_row += 1
                    if failures_in_a_row >= len(self.data):
                        raise TrainingError(
                            f"{self.data.source}: none of its {len(self.data)} images could be read (the last: {error})"
                        )
            free = sorted(still_free)
        if self.augment is not None:
            distort_colors(x, self.augment, draws)
        return x, labels

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                item = self._next_batch()
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who raises it
            self._queue.put(exc)

    # --- the consumer ------------------------------------------------------------------------
    def next(self) -> tuple[np.ndarray, np.ndarray]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._pool.shutdown(wait=True)
