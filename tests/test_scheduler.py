"""The GUI's scheduler without Qt: plain threads, real (small) networks, and gates instead of clocks.

A Gate holds every pass over one picture at the door of the classifier until the test opens it,
so a test knows which thread is busy with what; nothing here measures time or relies on sleeps.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import engine
import numpy as np
import pytest
from PIL import Image

from support import ROOT, SMALL_CFG
from tdn_gui.worker.scheduler import ClassifyFolderRequest, Counts, JobDone, Reports, Scheduler, TeachRequest

WAIT = 60  # seconds: a stall bound, never a speed requirement
REPORTS = (
    "result_ready",
    "model_loaded",
    "model_failed",
    "superseded",
    "classifier_changed",
    "job_progress",
    "job_finished",
    "kernels_changed",
)


def picture(seed: int, w: int = 32, h: int = 32) -> np.ndarray:
    """A distinct (H, W, 3) uint8 picture per seed."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@dataclass(frozen=True)
class Model:
    cfg: Path
    weights: Path
    names: Path

    def load_into(self, scheduler: Scheduler) -> None:
        scheduler.load_model(self.cfg, self.weights, self.names)

    def expected_top(self, image, resize: str = "min") -> list[tuple[int, str]]:
        """The engine's own answer (call it while no scheduler classifies)."""
        net = engine.Network.load(self.cfg, self.weights)
        classifier = engine.Classifier(net, engine.load_names(self.names, net.classes), resize=resize)
        return [(i, name) for i, name, _ in classifier.classify(image).top(5)]


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> tuple[Model, Model]:
    """Two 10-class networks of the same shape, told apart by their weights and their names."""
    made = []
    for name, seed in (("first", 1), ("second", 2)):
        folder = tmp_path_factory.mktemp(name)
        cfg = folder / f"{name}.cfg"
        cfg.write_text(SMALL_CFG)
        weights = folder / f"{name}.weights"
        engine.write_random_weights(cfg, weights, seed=seed)
        names = folder / f"{name}.names"
        names.write_text("".join(f"{name}-{k}\n" for k in range(10)))
        made.append(Model(cfg, weights, names))
    return made[0], made[1]


class Recorder:
    """Every report in the order the scheduler made it, as (kind, value)."""

    def __init__(self):
        self.log: list[tuple[str, object]] = []
        self._cond = threading.Condition()

    def reports(self) -> Reports:
        return Reports(**{kind: (lambda value, kind=kind: self._add(kind, value)) for kind in REPORTS})

    def _add(self, kind: str, value) -> None:
        with self._cond:
            self.log.append((kind, value))
            self._cond.notify_all()

    def of(self, kind: str) -> list:
        with self._cond:
            return [value for k, value in self.log if k == kind]

    def wait_for(self, kind: str, check=lambda value: True):
        """The first report of `kind` that passes `check`, waiting for it if need be."""

        def found():
            return next((v for k, v in self.log if k == kind and check(v)), None)

        with self._cond:
            assert self._cond.wait_for(lambda: found() is not None, WAIT), f"no {kind} came: {self.log}"
            return found()

    def results(self) -> dict:
        return {r.tag: r for r in self.of("result_ready")}

    def kinds(self) -> list[str]:
        return [k for k, _ in self.log if k != "kernels_changed"]


class Gate:
    """Holds every pass over `image` (the very array) until opened; says which threads came."""

    def __init__(self, image):
        self.image = image
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.threads: list[str] = []

    def hold(self) -> None:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        if not self.opened.wait(WAIT):
            raise RuntimeError("the test never opened the gate")


BATCHES = object()  # a Gate for this "image" holds every batch of a folder run


class GatedClassifier(engine.Classifier):
    """A real engine Classifier whose passes over the gates' pictures wait at their gates."""

    def __init__(self, net, names, resize, gates):
        super().__init__(net, names=names, resize=resize)
        self._gates = gates

    def classify(self, image, keep_going=None):
        for gate in self._gates:
            if image is gate.image:
                gate.hold()
        return super().classify(image, keep_going)

    def classify_batch(self, inputs):
        for gate in self._gates:
            if gate.image is BATCHES:
                gate.hold()
        return super().classify_batch(inputs)


def gated(*gates):
    return lambda net, names, resize: GatedClassifier(net, names, resize, gates)


@pytest.fixture
def scheduler():
    """scheduler(make_classifier=None, start=True) -> (Scheduler, Recorder); stopped at teardown,
    when every thread it started must have ended."""
    made = []

    def make(make_classifier=None, start=True):
        recorder = Recorder()
        s = Scheduler(recorder.reports(), make_classifier)
        made.append(s)
        if start:
            s.start()
        return s, recorder

    yield make
    for s in made:
        s.stop()
        assert not s.is_running() and not any(t.is_alive() for t in s.threads())


def loaded(scheduler, model: Model, make_classifier=None):
    s, recorder = scheduler(make_classifier)
    model.load_into(s)
    recorder.wait_for("model_loaded")
    return s, recorder


def top_of(result) -> list[tuple[int, str]]:
    assert result.error is None, result.error
    return [(i, name) for i, name, _ in result.top]


def test_the_scheduler_needs_no_qt():
    code = "import sys, tdn_gui.worker.scheduler; sys.exit('PySide6' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_latest_frame_wins(scheduler, models):
    """While the inference thread is busy, each new request replaces the one waiting, which is
    reported superseded at once; when the thread is free it takes the newest."""
    model = models[0]
    frames = [picture(i) for i in range(50)]
    expected = model.expected_top(frames[-1])
    gate = Gate(frames[0])
    s, recorder = loaded(scheduler, model, gated(gate))
    s.submit(0, frames[0])
    assert gate.entered.wait(WAIT)  # the inference thread holds frame 0
    for i in range(1, 50):
        s.submit(i, frames[i])
    assert s.pending == 1
    assert recorder.of("superseded") == list(range(1, 49))
    gate.opened.set()
    recorder.wait_for("result_ready", lambda r: r.tag == 49)
    assert [r.tag for r in recorder.of("result_ready")] == [0, 49]
    assert top_of(recorder.results()[49]) == expected
    assert s.counts() == Counts(submitted=50, processed=2, dropped=48, abandoned=0, lane_processed=0)
    assert s.pending == 0 and s.lanes == 1


def test_freed_memory_goes_back_now_and_then_while_classifying(scheduler, models, monkeypatch):
    """memory.trim (the real one, counted) runs between answers once TRIM_SECONDS have passed since
    the last, and not before: a long webcam run gets its freed frames back without a switch."""
    from engine import memory
    from tdn_gui.worker.scheduler import scheduler as scheduler_module

    calls = []
    real_trim = memory.trim
    monkeypatch.setattr(memory, "trim", lambda: (calls.append(1), real_trim()))
    s, recorder = loaded(scheduler, models[0])
    calls.clear()  # the load's give_back trims too
    for tag in range(3):  # one at a time: each is classified
        s.submit(tag, picture(tag))
        recorder.wait_for("result_ready", lambda r, tag=tag: r.tag == tag)
    assert calls == []  # not 30 s yet
    monkeypatch.setattr(scheduler_module, "TRIM_SECONDS", 0.0)
    for tag in range(3, 6):
        s.submit(tag, picture(tag))
        recorder.wait_for("result_ready", lambda r, tag=tag: r.tag == tag)
    s.stop()  # the last answer's trim is done when it returns
    assert len(calls) == 3


def test_a_switch_goes_before_the_work_meant_for_it(scheduler, models):
    """A model load and a resize change posted while a frame is in hand are done before the
    frame posted after them, which the new model answers in the new mode."""
    first, second = models
    held, after = picture(1), picture(2, 64, 32)
    expected_held = first.expected_top(held)
    expected_after = second.expected_top(after, resize="stretch")
    gate = Gate(held)
    s, recorder = loaded(scheduler, first, gated(gate))
    s.submit("held", held)
    assert gate.entered.wait(WAIT)
    second.load_into(s)
    s.set_resize("stretch")
    s.submit("after", after)
    gate.opened.set()
    recorder.wait_for("result_ready", lambda r: r.tag == "after")
    assert recorder.kinds() == ["model_loaded", "result_ready", "model_loaded", "result_ready"]
    assert [info.name for info in recorder.of("model_loaded")] == ["first", "second"]
    results = recorder.results()
    assert top_of(results["held"]) == expected_held
    assert top_of(results["after"]) == expected_after
    with pytest.raises(ValueError, match="unknown resize mode"):
        s.set_resize("squash")


def test_a_model_that_does_not_load_leaves_the_last_one_live(scheduler, models, tmp_path):
    first, second = models
    frame = picture(3)
    expected = first.expected_top(frame)
    s, recorder = loaded(scheduler, first)
    s.load_model(tmp_path / "missing.cfg", second.weights)
    reason = recorder.wait_for("model_failed")
    assert "missing.cfg" in reason and "\n" not in reason
    s.submit("frame", frame)
    assert top_of(recorder.wait_for("result_ready")) == expected


def test_one_job_at_a_time_and_a_switch_before_it(scheduler, models, tmp_path):
    """Jobs queue one at a time; a job posted after a load runs on the new model."""
    first, second = models
    s, recorder = scheduler(start=False)
    first.load_into(s)
    job = s.start_job(ClassifyFolderRequest(str(tmp_path / "missing")))
    assert s.busy
    with pytest.raises(RuntimeError):
        s.start_job(ClassifyFolderRequest(str(tmp_path)))
    s.start()
    done: JobDone = recorder.wait_for("job_finished")
    assert done.job == job.id and "is not a folder" in done.error and "\n" not in done.error
    assert not s.busy
    assert recorder.kinds() == ["model_loaded", "job_finished"]

    folder = tmp_path / "fruit"
    (folder / "second-3").mkdir(parents=True)  # a folder named after one of the second model's classes
    Image.fromarray(picture(4)).save(folder / "second-3" / "a.png")
    second.load_into(s)
    job = s.start_job(ClassifyFolderRequest(str(folder)))
    done = recorder.wait_for("job_finished", lambda d: d.job == job.id)
    assert done.error is None and done.value.images == 1  # labelled by the second model's names
    later = recorder.kinds()[2:]
    assert later[0] == "model_loaded" and later[-1] == "job_finished"
    assert set(later[1:-1]) <= {"job_progress"}


def test_a_finished_teach_keeps_no_buffers_for_its_photos_shapes(scheduler, models, tmp_path):
    """Teaching runs photos of many shapes through the backbone; the result the Teach view keeps
    (for as long as the app runs) holds none of those passes' buffers (the soak's +238 MB)."""
    first = models[0]
    folder = tmp_path / "classes"
    for k, (w, h) in enumerate(((40, 32), (32, 48), (56, 40))):  # three shapes per class
        for label in ("apples", "pears"):
            (folder / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(picture(10 * k + len(label), w, h)).save(folder / label / f"{k}.png")
    s, recorder = loaded(scheduler, first)
    job = s.start_job(TeachRequest(str(folder), augment=(), folds=2))
    done: JobDone = recorder.wait_for("job_finished", lambda d: d.job == job.id)
    assert done.error is None, done.error
    backbone = done.value.model.backbone
    assert backbone.net.plans_held == 0
    backbone.pooled(backbone.preprocess(picture(1))[None])
    assert backbone.net.plans_held == 1  # and it still runs, building what it needs


def test_cancel_a_job_before_it_starts_and_while_it_runs(scheduler, models, tmp_path):
    first = models[0]
    folder = tmp_path / "classes"
    for k, name in enumerate(("first-0", "first-1")):
        (folder / name).mkdir(parents=True)
        for i in range(20):  # 40 images: three batches of 16
            Image.fromarray(picture(100 * k + i)).save(folder / name / f"{i:02d}.png")
    gate = Gate(BATCHES)
    s, recorder = scheduler(gated(gate), start=False)
    first.load_into(s)
    job = s.start_job(TeachRequest(str(folder)))
    job.cancel()
    s.start()
    done = recorder.wait_for("job_finished")
    assert done.cancelled and done.value is None and not s.busy

    job = s.start_job(ClassifyFolderRequest(str(folder)))
    assert gate.entered.wait(WAIT)  # the first batch is in hand
    job.cancel()
    gate.opened.set()
    done = recorder.wait_for("job_finished", lambda d: d.job == job.id)
    assert done.cancelled and done.value.images == 16 and not s.busy


def test_stop_cancels_the_job_and_joins_the_thread(scheduler, models, tmp_path):
    """stop() returns once every thread it started has ended; the job in hand is cancelled and
    still reports its end."""
    first = models[0]
    folder = tmp_path / "classes"
    (folder / "first-0").mkdir(parents=True)
    for i in range(20):
        Image.fromarray(picture(i)).save(folder / "first-0" / f"{i:02d}.png")
    gate = Gate(BATCHES)
    s, recorder = loaded(scheduler, first, gated(gate))
    job = s.start_job(ClassifyFolderRequest(str(folder)))
    assert gate.entered.wait(WAIT)
    stopper = threading.Thread(target=s.stop)
    stopper.start()
    assert job.cancel_event.wait(WAIT)  # stop cancels the job in hand...
    assert stopper.is_alive()  # ...and waits for it
    gate.opened.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert not s.is_running() and [t.is_alive() for t in s.threads()] == [False]
    assert recorder.wait_for("job_finished").cancelled


def test_stop_before_start_and_twice(scheduler):
    s, _ = scheduler(start=False)
    s.stop()
    s.start()
    s.stop()
    s.stop()
    assert not s.is_running()


def two_lanes(scheduler, model: Model, *gates):
    """A scheduler with its stream lane running, or skip where the thread policy allows none."""
    s, recorder = loaded(scheduler, model, gated(*gates))
    if s.lanes != 2:
        pytest.skip("one lane only: Numba's threading layer cannot run kernels on two threads at once")
    return s, recorder


def test_stream_frames_share_two_lanes_and_images_keep_to_one(scheduler, models, compiled_kernels):
    first = models[0]
    a, b, image = picture(1), picture(2), picture(3)
    expected = {"a": first.expected_top(a), "b": first.expected_top(b), "image": first.expected_top(image)}
    gate_a, gate_b, gate_image = Gate(a), Gate(b), Gate(image)
    gate_image.opened.set()
    s, recorder = two_lanes(scheduler, first, gate_a, gate_b, gate_image)
    s.submit("a", a, stream=True)
    assert gate_a.entered.wait(WAIT)
    s.submit("b", b, stream=True)
    assert gate_b.entered.wait(WAIT)  # both frames in hand at once: one per lane
    assert sorted(gate_a.threads + gate_b.threads) == ["tdn-inference", "tdn-stream-lane"]
    gate_a.opened.set()  # a (the older) answers first: b goes on
    recorder.wait_for("result_ready", lambda r: r.tag == "a")
    gate_b.opened.set()
    recorder.wait_for("result_ready", lambda r: r.tag == "b")
    assert [r.tag for r in recorder.of("result_ready")] == ["a", "b"]
    for k in range(3):  # single images stay on the inference thread
        s.submit(("image", k), image)
        recorder.wait_for("result_ready", lambda r, k=k: r.tag == ("image", k))
    assert gate_image.threads == ["tdn-inference"] * 3
    for tag, result in recorder.results().items():
        assert top_of(result) == expected[tag if isinstance(tag, str) else "image"]
    counts = s.counts()
    assert counts.abandoned == 0 and counts.lane_processed == 1
    s.stop()
    assert [t.name for t in s.threads()] == ["tdn-inference", "tdn-stream-lane"]
    assert not any(t.is_alive() for t in s.threads())


def test_an_older_frame_overtaken_by_a_newer_answer_is_abandoned(scheduler, models, compiled_kernels):
    """Frame 1 is in one lane when the other answers frame 2: frame 1's answer would be stale, so
    its pass stops at its next layer and it is reported superseded. Other requests always finish."""
    first = models[0]
    slow, fast = picture(1), picture(2)
    gate = Gate(slow)
    s, recorder = two_lanes(scheduler, first, gate)
    s.submit("slow", slow, stream=True)
    assert gate.entered.wait(WAIT)
    s.submit("fast", fast, stream=True)
    recorder.wait_for("result_ready", lambda r: r.tag == "fast")
    gate.opened.set()
    assert recorder.wait_for("superseded") == "slow"
    assert [r.tag for r in recorder.of("result_ready")] == ["fast"]
    assert s.counts() == Counts(
        submitted=2, processed=1, dropped=0, abandoned=1, lane_processed=int(gate.threads == ["tdn-inference"])
    )
    s.submit("image", slow)  # not a stream frame: never abandoned
    recorder.wait_for("result_ready", lambda r: r.tag == "image")
    assert s.counts().abandoned == 1 and recorder.of("superseded") == ["slow"]


def test_stream_frames_go_on_in_the_lane_while_a_job_runs(scheduler, models, compiled_kernels, tmp_path):
    """A job holds the inference thread (here a folder run, held at its first batch; a teach job's
    fine-tuning takes tens of seconds): live frames are still answered, by the stream lane."""
    first = models[0]
    folder = tmp_path / "folder"
    (folder / "first-1").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(picture(200 + i)).save(folder / "first-1" / f"{i}.png")
    frames = [picture(300 + i) for i in range(3)]
    expected = [first.expected_top(frame) for frame in frames]
    gate = Gate(BATCHES)
    s, recorder = two_lanes(scheduler, first, gate)
    s.start_job(ClassifyFolderRequest(str(folder)))
    assert gate.entered.wait(WAIT) and gate.threads == ["tdn-inference"]  # the job has the inference thread
    for k, frame in enumerate(frames):
        s.submit(("frame", k), frame, stream=True)
        result = recorder.wait_for("result_ready", lambda r, k=k: r.tag == ("frame", k))
        assert top_of(result) == expected[k]
    assert s.counts().lane_processed == len(frames) and s.busy and not recorder.of("job_finished")
    gate.opened.set()
    done = recorder.wait_for("job_finished")
    assert done.error is None and done.value.images == 3


def test_both_lanes_move_to_a_new_model(scheduler, models, compiled_kernels):
    """After a load, each lane answers with the new model (the stream lane gets its own copy)."""
    first, second = models
    a, b = picture(1), picture(2)
    expected = {"a": second.expected_top(a, "letterbox"), "b": second.expected_top(b, "letterbox")}
    gate_a, gate_b = Gate(a), Gate(b)
    s, recorder = two_lanes(scheduler, first, gate_a, gate_b)
    second.load_into(s)
    recorder.wait_for("model_loaded", lambda info: info.name == "second")
    s.submit("a", a, stream=True)
    assert gate_a.entered.wait(WAIT)
    s.submit("b", b, stream=True)
    assert gate_b.entered.wait(WAIT)
    assert sorted(gate_a.threads + gate_b.threads) == ["tdn-inference", "tdn-stream-lane"]
    gate_a.opened.set()
    recorder.wait_for("result_ready", lambda r: r.tag == "a")
    gate_b.opened.set()
    recorder.wait_for("result_ready", lambda r: r.tag == "b")
    for tag, result in recorder.results().items():
        assert top_of(result) == expected[tag]


def test_a_heatmap_comes_only_when_asked_for(scheduler, models):
    model = models[0]
    image = picture(3, 48, 32)
    s, recorder = loaded(scheduler, model)
    s.submit("plain", image)
    recorder.wait_for("result_ready", lambda r: r.tag == "plain")
    s.submit("mapped", image, heatmap=True)
    recorder.wait_for("result_ready", lambda r: r.tag == "mapped")
    plain, mapped = recorder.results()["plain"], recorder.results()["mapped"]
    assert plain.heatmap is None and plain.heatmap_note is None
    assert top_of(mapped) == top_of(plain)
    np.testing.assert_allclose(mapped.probs, plain.probs, atol=1e-6)
    # SMALL_CFG's 1x1 conv before the avgpool: one map per class, whose mean is the class score
    net = engine.Network.load(model.cfg, model.weights)
    x = engine.Classifier(net).preprocess(image)
    scores = net.features(x, len(net.spec.layers) - 2)[0].ravel()
    np.testing.assert_allclose(mapped.heatmap.maps.mean(axis=(0, 1)), scores, atol=1e-5)


def test_test_time_augmentation_is_switched_per_view(scheduler, models):
    model = models[0]
    image = picture(4, 40, 32)
    s, recorder = loaded(scheduler, model)
    s.set_tta(True)
    s.submit("image", image)
    recorder.wait_for("result_ready", lambda r: r.tag == "image")
    s.submit("frame", image, stream=True)
    recorder.wait_for("result_ready", lambda r: r.tag == "frame")
    results = recorder.results()
    net = engine.Network.load(model.cfg, model.weights)
    augmented = engine.Classifier(net, tta="flip,scales").classify(image).probs
    plain = engine.Classifier(net, resize="letterbox").classify(image).probs  # frames' default mode
    np.testing.assert_allclose(results["image"].probs, augmented, atol=1e-6)
    np.testing.assert_allclose(results["frame"].probs, plain, atol=1e-6)  # frames: still off
    assert not np.allclose(augmented, plain, rtol=1e-4, atol=0)
