"""`tdn-gui`: the desktop classifier. `main()` parses the command line and runs the window.

Exit status: 0 when the window is closed (or File ▸ Quit); 128 + N when signal N ended the app
(Ctrl+C in the terminal is SIGINT: 130; SIGTERM 143, SIGHUP 129), the shell's convention, after
the same shutdown as closing the window: camera released, threads joined, settings saved.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path

from PySide6.QtCore import QSocketNotifier
from PySide6.QtWidgets import QApplication, QWidget

from . import launcher
from .icon import app_icon
from .settings import APPLICATION, ORGANISATION, ModelChoice, Settings
from .views.main_window import MainWindow
from .worker.engine_api import MODELS, RESIZE_HELP, RESIZE_MODES, cfg_path, settings_problem, version


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tdn-gui",
        description="Classify images and camera frames with Tiny Darknet (or another darknet classifier).",
    )
    p.add_argument("images", nargs="*", help="image files or folders to open")
    p.add_argument(
        "--camera",
        metavar="N|FILE",
        help="start the webcam view on camera index N, or on a video file (played in a loop)",
    )
    p.add_argument(
        "--model", metavar="KEY|CFG", help=f"a model key ({', '.join(MODELS)}) or a darknet .cfg file (needs --weights)"
    )
    p.add_argument("--weights", metavar="FILE", help="the .weights file for --model")
    p.add_argument("--names", metavar="FILE", help="class names, one per line (default: the downloaded list)")
    p.add_argument(
        "--resize",
        choices=RESIZE_MODES,
        help="how images are fitted to the network (default: the Resize menu's last choice, "
        "min at first). " + RESIZE_HELP,
    )
    p.add_argument(
        "--webcam-resize",
        choices=RESIZE_MODES,
        help="the same for camera frames (default: the menu's last choice, letterbox at first, "
        "as in darknet's webcam demo: one input size for every frame keeps live video fast)",
    )
    p.add_argument("--version", action="version", version=f"tdn-gui {version()}")
    desktop = p.add_mutually_exclusive_group()
    desktop.add_argument(
        "--install-launcher",
        action="store_true",
        help="add tdn to the desktop's applications menu (a .desktop entry and icons under "
        "$XDG_DATA_HOME or ~/.local/share), print what was written, and exit",
    )
    desktop.add_argument(
        "--uninstall-launcher", action="store_true", help="remove what --install-launcher wrote, and exit"
    )
    p.epilog = (
        "Ctrl+C in the terminal (SIGINT), SIGTERM and SIGHUP quit as closing the window does; "
        "the exit status is then 128 + the signal's number (130 for Ctrl+C)."
    )
    return p


def model_choice(args: argparse.Namespace, settings: Settings, parser: argparse.ArgumentParser) -> ModelChoice:
    """The command line wins over the remembered model."""
    if args.model is None:
        if args.weights:
            parser.error("--weights needs --model (a key or a .cfg file)")
        remembered = settings.model()
        return ModelChoice(remembered.key, remembered.cfg, remembered.weights, args.names or remembered.names)
    if args.model in MODELS:
        if args.weights:  # a registry cfg with weights from elsewhere
            return ModelChoice(cfg=str(cfg_path(args.model)), weights=args.weights, names=args.names)
        return ModelChoice(key=args.model, names=args.names)
    if not args.weights:
        parser.error(
            f"--model {args.model}: a cfg file needs --weights FILE (or give a model key: {', '.join(MODELS)})"
        )
    return ModelChoice(cfg=args.model, weights=args.weights, names=args.names)


def build_window(argv=None) -> MainWindow:
    """Everything main() does except running the event loop (tests drive the loop themselves)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    QApplication.setOrganizationName(ORGANISATION)
    QApplication.setApplicationName(APPLICATION)
    QApplication.setDesktopFileName(launcher.APP_ID)  # Wayland matches the window to tdn.desktop by it
    QApplication.setWindowIcon(app_icon())  # the window's and its dialogs'
    settings = Settings()
    window = MainWindow(settings, resize=args.resize, webcam_resize=args.webcam_resize)
    window.show()
    window.choose_model(model_choice(args, settings, parser))
    if args.images:
        window.add_paths(args.images)
    if args.camera is not None:
        window.webcam_view.set_source(args.camera)
        window.tabs.setCurrentWidget(window.webcam_view)
        window.webcam_view.start()
    else:
        last = settings.camera()
        if last.isdigit() or Path(last).is_file():
            window.webcam_view.set_source(last)
    return window


QUIT_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # those this platform lacks are skipped


class QuitOnSignals:
    """While installed, SIGINT, SIGTERM and SIGHUP close `window` and end the event loop.

    Python runs its signal handlers only between bytecodes, and while Qt's event loop waits in
    C++ there are none: a handler alone would wait for the next event. So Python's C-level
    handler also writes the signal's number to a socket (signal.set_wakeup_fd), whose other end
    a QSocketNotifier watches: the loop wakes at once, and the quit happens in the notifier's
    slot, from the event loop, never in the middle of another slot. `code` is then 128 + the
    first signal's number. A second signal while the app is shutting down is let through with
    its default action (a way out, should a thread never end).
    """

    def __init__(self, window: QWidget, app: QApplication):
        self.code: int | None = None
        self._window, self._app = window, app
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)  # set_wakeup_fd requires it: a signal handler never blocks
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._on_wakeup)
        self._previous: dict[int, object] = {}
        for name in QUIT_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None or signal.getsignal(signum) is signal.SIG_IGN:
                continue  # ignored by whoever started us (nohup, a background job): leave it so
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        # Python's part of the handler; the byte on the socket does the quitting.
        if self.code is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def _on_wakeup(self) -> None:
        try:
            data = self._reader.recv(256)
        except (BlockingIOError, InterruptedError):
            return
        ours = [signum for signum in data if signum in self._previous]
        if not ours or self.code is not None:
            return
        self.code = 128 + ours[0]
        self._window.close()  # closeEvent: MainWindow.shutdown
        self._app.quit()  # even if something kept the window open

    def uninstall(self) -> None:
        """Put back the handlers and the wakeup fd found at install time."""
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._notifier.setEnabled(False)
        self._reader.close()
        self._writer.close()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)  # --help and usage errors first: they need no display
    if args.install_launcher or args.uninstall_launcher:
        return launcher.run(install_it=args.install_launcher)
    problem = settings_problem()
    if problem:
        print(f"tdn-gui: {problem}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = build_window(argv)
    # Every way out of the event loop ends the threads and saves the settings, not only closing
    # the window: app.exit(), a signal, the display going away (Qt then ends the loop itself).
    app.aboutToQuit.connect(window.shutdown)
    signals = QuitOnSignals(window, app)
    try:
        code = app.exec()
    finally:
        signals.uninstall()
        app.aboutToQuit.disconnect(window.shutdown)
    del window
    return code if signals.code is None else signals.code


if __name__ == "__main__":
    sys.exit(main())
