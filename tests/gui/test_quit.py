"""Every way out of tdn-gui shuts it down as closing the window does: camera released, threads
joined, settings saved. The real app runs in a process of its own (`python -m tdn_gui`), on a
small random model and a short video file so that the capture thread and the worker are busy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer

from gui_helpers import MODEL_LOAD_MS
from support import ROOT
from tdn_gui.app import main
from tdn_gui.settings import Settings
from tdn_gui.views.main_window import MainWindow

# Stall bounds, not speed requirements: the app starts in a few seconds and quits in well under
# one; these only keep a hung app from hanging the test run.
START_S = 90
QUIT_S = 30

QUIT_SIGNALS = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]


@contextlib.contextmanager
def not_ignored(signum: int):
    """A child inherits an ignored signal (the tests run in a background job, or under nohup),
    and the app rightly leaves an ignored signal alone: start it with the default action."""
    previous = signal.getsignal(signum)
    if previous is signal.SIG_IGN:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    try:
        yield
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signum, signal.SIG_IGN)


class App:
    """`python -m tdn_gui` with its own settings, model cache and temp folder under `root`."""

    def __init__(self, root: Path, argv, env=None, signum: int = signal.SIGINT):
        self.config = root / "config"
        self.stderr_path = root / "stderr.txt"
        for name in ("cache", "temp"):
            (root / name).mkdir(exist_ok=True)
        env = dict(os.environ if env is None else env)
        env.update(
            XDG_CONFIG_HOME=str(self.config),  # QSettings' user-scope INI file
            TDN_CACHE_DIR=str(root / "cache"),
            TMPDIR=str(root / "temp"),
            TDN_KERNELS="portable",
        )  # nothing starts a background compiler
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        with open(self.stderr_path, "w") as stderr, not_ignored(signum):
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tdn_gui", *map(str, argv)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    @property
    def settings_file(self) -> Path:
        return self.config / "tdn" / "tdn-gui.ini"

    def setting(self, key: str):
        if not self.settings_file.is_file():
            return None
        return QSettings(str(self.settings_file), QSettings.Format.IniFormat).value(key)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_until(self, ready, what: str) -> None:
        """Poll `ready()` while the app runs; fail saying `what` it never got to."""
        deadline = time.monotonic() + START_S
        while not ready():
            if self.process.poll() is not None:
                pytest.fail(f"tdn-gui ended ({self.process.returncode}) before {what}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                pytest.fail(f"tdn-gui never got to {what} in {START_S} s:\n{self.stderr()}")
            time.sleep(0.1)

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=QUIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tdn-gui still running {QUIT_S} s after it was told to quit:\n{self.stderr()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_classifying(root: Path, small_model, video, env=None, signum: int = signal.SIGINT) -> App:
    """The app on `small_model`, playing `video`, once the model has loaded (the settings file
    records the model then, and the camera source when the capture thread started)."""
    app = App(root, [*small_model.argv(), "--camera", video], env, signum)
    app.wait_until(
        lambda: app.setting("model/cfg") == str(small_model.cfg) and app.setting("camera/source") == str(video),
        "loading the model",
    )
    assert app.setting("window/geometry") is None  # written only by the shutdown
    return app


def assert_shut_down_cleanly(app: App, small_model, video) -> None:
    err = app.stderr()
    assert "Traceback" not in err, err
    assert "QThread: Destroyed" not in err, err
    assert app.setting("window/geometry") is not None, "the shutdown did not save the settings"
    assert app.setting("model/cfg") == str(small_model.cfg)
    assert app.setting("model/weights") == str(small_model.weights)
    assert app.setting("camera/source") == str(video)


@pytest.mark.parametrize("signum", QUIT_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_quits_as_closing_the_window_does(tmp_path, small_model, video, signum):
    """Ctrl+C in the terminal (SIGINT), SIGTERM and SIGHUP: the exit status is 128 + the signal."""
    app = start_classifying(tmp_path, small_model, video, signum=signum)
    try:
        app.process.send_signal(signum)
        assert app.wait() == 128 + signum, app.stderr()
    finally:
        app.kill()
    assert_shut_down_cleanly(app, small_model, video)


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """A virtual X server on a display number it picks itself; skip where there is none."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("needs Xvfb (a virtual X server) to take a display away")
    read, write = os.pipe()
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", "1024x768x24"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as announced:
        number = announced.readline().strip()  # written once the server accepts connections
    if not number:
        server.wait()
        pytest.skip("Xvfb did not start")
    return server, f":{number}"


def test_the_display_going_away_ends_the_threads(tmp_path, small_model, video):
    """Qt ends the event loop itself when the X connection breaks: the same shutdown runs."""
    server, display = start_xvfb()
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")
    app = None
    try:
        app = App(tmp_path, [*small_model.argv(), "--camera", video], env)
        try:
            app.wait_until(
                lambda: app.setting("model/cfg") == str(small_model.cfg) and app.setting("camera/source") == str(video),
                "loading the model",
            )
        except pytest.fail.Exception:
            if "platform plugin" in app.stderr():
                pytest.skip("Qt's xcb platform plugin does not load here")
            raise
        server.terminate()
        server.wait()
        code = app.wait()
        assert code >= 0, f"ended by signal {-code}:\n{app.stderr()}"  # e.g. an abort on a running QThread
    finally:
        if app is not None:
            app.kill()
        if server.poll() is None:
            server.kill()
            server.wait()
    assert "X11 connection broke" in app.stderr()
    assert_shut_down_cleanly(app, small_model, video)


def test_leaving_the_event_loop_ends_the_threads_and_saves(qapp, small_model, video):
    """The event loop ended with the window still open: main() returns after the same shutdown,
    and leaves the signal handlers as it found them. (app.quit() closes the windows first, since
    Qt 6.5; app.exit() does not, nor does Qt when the display goes away.)"""
    handlers = {s: signal.getsignal(s) for s in QUIT_SIGNALS}
    seen: dict = {}

    def quit_once_classifying():
        windows = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].model_info is not None and windows[0].webcam_view.is_running():
            window = seen["window"] = windows[0]
            seen["threads"] = window.worker.scheduler.threads()
            seen["capture"] = window.webcam_view.capture
            qapp.exit(0)
        elif time.monotonic() > deadline:
            qapp.exit(0)  # the assertions below say what was missing
        else:
            QTimer.singleShot(20, quit_once_classifying)

    deadline = time.monotonic() + MODEL_LOAD_MS / 1000
    QTimer.singleShot(0, quit_once_classifying)
    assert main([*small_model.argv(), "--camera", str(video)]) == 0
    assert "window" in seen, "the model never loaded, or the camera never started"
    window = seen["window"]
    assert window.isVisible()  # not closed: the shutdown came from aboutToQuit
    assert seen["threads"] and not any(t.is_alive() for t in seen["threads"])
    assert not window.worker.is_running()
    assert seen["capture"].isFinished() and window.webcam_view.capture is None
    assert not any(t.name.startswith("tdn-") for t in threading.enumerate())
    assert Settings().geometry() is not None
    assert {s: signal.getsignal(s) for s in QUIT_SIGNALS} == handlers
    assert signal.set_wakeup_fd(-1) == -1
    window.close()  # already shut down: closing again does nothing more
