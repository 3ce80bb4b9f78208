"""`tdn-gui`: the desktop classifier. `main()` parses the command line and runs the window."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from .settings import APPLICATION, ORGANISATION, ModelChoice, Settings
from .views.main_window import MainWindow
from .worker.engine_api import MODELS, RESIZE_HELP, RESIZE_MODES, cfg_path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tdn-gui", description="Classify images and camera frames "
                                "with Tiny Darknet (or another darknet classifier).")
    p.add_argument("images", nargs="*", help="image files or folders to open")
    p.add_argument("--camera", metavar="N|FILE",
                   help="start the webcam view on camera index N, or on a video file (played in a loop)")
    p.add_argument("--model", metavar="KEY|CFG",
                   help=f"a model key ({', '.join(MODELS)}) or a darknet .cfg file (needs --weights)")
    p.add_argument("--weights", metavar="FILE", help="the .weights file for --model")
    p.add_argument("--names", metavar="FILE", help="class names, one per line (default: the downloaded list)")
    p.add_argument("--resize", choices=RESIZE_MODES,
                   help="how images are fitted to the network (default: the Resize menu's last choice, "
                        "min at first). " + RESIZE_HELP)
    p.add_argument("--webcam-resize", choices=RESIZE_MODES,
                   help="the same for camera frames (default: the menu's last choice, letterbox at first, "
                        "as in darknet's webcam demo: one input size for every frame keeps live video fast)")
    return p


def model_choice(args: argparse.Namespace, settings: Settings, parser: argparse.ArgumentParser) -> ModelChoice:
    """The command line wins over the remembered model."""
    if args.model is None:
        if args.weights:
            parser.error("--weights needs --model (a key or a .cfg file)")
        remembered = settings.model()
        return ModelChoice(remembered.key, remembered.cfg, remembered.weights, args.names or remembered.names)
    if args.model in MODELS:
        if args.weights:   # a registry cfg with weights from elsewhere
            return ModelChoice(cfg=str(cfg_path(args.model)), weights=args.weights, names=args.names)
        return ModelChoice(key=args.model, names=args.names)
    if not args.weights:
        parser.error(f"--model {args.model}: a cfg file needs --weights FILE "
                     f"(or give a model key: {', '.join(MODELS)})")
    return ModelChoice(cfg=args.model, weights=args.weights, names=args.names)


def build_window(argv=None) -> MainWindow:
    """Everything main() does except running the event loop (tests drive the loop themselves)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    QApplication.setOrganizationName(ORGANISATION)
    QApplication.setApplicationName(APPLICATION)
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


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    build_parser().parse_args(argv)    # --help and usage errors first: they need no display
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = build_window(argv)
    code = app.exec()
    del window
    return code


if __name__ == "__main__":
    sys.exit(main())
