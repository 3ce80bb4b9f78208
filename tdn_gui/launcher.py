"""`tdn-gui --install-launcher` and `--uninstall-launcher`: tdn in the desktop's application menu.

Install writes, under $XDG_DATA_HOME (~/.local/share when unset), as the freedesktop
specifications lay them out:

    applications/tdn.desktop                  the menu entry; it starts this install's tdn-gui
    icons/hicolor/<n>x<n>/apps/tdn.png        n in ICON_SIZES, drawn from the SVG now
    icons/hicolor/scalable/apps/tdn.svg

Uninstall removes those files (the entry only if it carries our mark, so someone else's
tdn.desktop is left alone), then the folders they leave empty, up to the data folder itself.
Neither opens a window nor needs a display.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice

from .icon import ICON_SIZES, render, svg_path
from .worker.engine_api import replacing, version

APP_ID = "tdn"  # the entry's file name, and the icon's name; app.py gives Qt the same
MARK = "X-Tdn-Launcher"  # a key of ours in the entry: what uninstall checks before removing it
ENTRY = """[Desktop Entry]
Type=Application
Version=1.4
Name=tdn
GenericName=Image classifier
Comment=Classify images and webcam frames with Tiny Darknet and other darknet models
Exec={exec}
Icon={app_id}
Terminal=false
Categories=Science;ArtificialIntelligence;ImageProcessing;
Keywords=darknet;classifier;neural network;webcam;ImageNet;
{mark}=written by tdn-gui {version} --install-launcher
"""


def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share when it is unset or not absolute (the spec's rule)."""
    env = os.environ.get("XDG_DATA_HOME", "")
    return Path(env) if os.path.isabs(env) else Path.home() / ".local" / "share"


def entry_path(home: Path) -> Path:
    return home / "applications" / f"{APP_ID}.desktop"


def icon_paths(home: Path) -> dict[int | None, Path]:
    """{size: where its PNG goes}, and None: where the SVG goes."""
    hicolor = home / "icons" / "hicolor"
    paths: dict[int | None, Path] = {n: hicolor / f"{n}x{n}" / "apps" / f"{APP_ID}.png" for n in ICON_SIZES}
    paths[None] = hicolor / "scalable" / "apps" / f"{APP_ID}.svg"
    return paths


def command() -> list[str]:
    """How the desktop starts this install's tdn-gui. The menu starts it without our PATH or
    virtual environment, so: the tdn-gui script pip put beside this Python (a venv's bin/, as
    scripts/run-app makes), else this Python running the package. Not whichever tdn-gui PATH
    finds first: that may belong to another install."""
    script = Path(sys.executable).parent / "tdn-gui"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    run = [sys.executable, "-m", "tdn_gui"]
    try:
        importlib.metadata.version("tdn")
    except importlib.metadata.PackageNotFoundError:
        # a source tree run without installing: the package is found only from its folder
        return ["env", f"PYTHONPATH={Path(__file__).resolve().parent.parent}", *run]
    return run


_RESERVED = re.compile(r"""[\s"'\\><~|&;$*?#()`]""")


def exec_value(argv: list[str]) -> str:
    """The Exec= line for argv, quoted by the Desktop Entry spec's rules, plus %F (dropped or
    opened files, as `tdn-gui a.jpg b.png`)."""
    quoted = []
    for arg in argv:
        if "\n" in arg or "\r" in arg:
            raise OSError(f"a launcher cannot run {arg!r}: its name holds a line break")
        arg = arg.replace("%", "%%")
        if _RESERVED.search(arg):
            arg = '"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"'
        quoted.append(arg.replace("\\", "\\\\"))  # the value's own escape, applied before quoting
    return " ".join(quoted + ["%F"])


def png_bytes(size: int) -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not render(size).save(buffer, "PNG"):
        raise OSError(f"could not encode the {size}x{size} icon as PNG")
    return bytes(buffer.data())


def install(home: Path | None = None) -> list[Path]:
    """Write the entry and the icons; return what was written."""
    home = home or data_home()
    files: dict[Path, bytes] = {
        path: png_bytes(size) if size else svg_path().read_bytes() for size, path in icon_paths(home).items()
    }
    # the entry last: a menu never shows it before its icon is there
    files[entry_path(home)] = ENTRY.format(
        exec=exec_value(command()), app_id=APP_ID, mark=MARK, version=version()
    ).encode()
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as f:
            f.write(data)
    return list(files)


def uninstall(home: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Remove what install wrote; return (removed, left because it is not ours)."""
    home = home or data_home()
    removed, foreign = [], []
    entry = entry_path(home)
    if entry.is_file():
        if f"\n{MARK}=" in entry.read_text(errors="replace"):
            entry.unlink()
            removed.append(entry)
        else:
            foreign.append(entry)
    for path in icon_paths(home).values():
        if path.is_file():
            path.unlink()
            removed.append(path)
    for path in removed:
        _remove_empty_folders(path.parent, home)
    return removed, foreign


def _remove_empty_folders(folder: Path, home: Path) -> None:
    while folder != home and home in folder.parents:
        try:
            folder.rmdir()  # only when empty
        except OSError:
            return
        folder = folder.parent


def run(install_it: bool) -> int:
    """What the two options do: the work, then one line per file, on stdout."""
    home = data_home()
    try:
        if install_it:
            written = install(home)
            print(f"tdn-gui: installed the launcher; it runs {' '.join(command())}")
            for path in written:
                print(f"  wrote {path}")
            print(
                "tdn is in the applications menu (some desktops show it after logging in again); "
                "`tdn-gui --uninstall-launcher` removes it."
            )
            return 0
        removed, foreign = uninstall(home)
    except OSError as exc:
        print(f"tdn-gui: error: {exc}", file=sys.stderr)
        return 1
    for path in removed:
        print(f"  removed {path}")
    for path in foreign:
        print(f"  left {path}: not written by tdn-gui")
    print(
        f"tdn-gui: removed the launcher ({len(removed)} files)"
        if removed
        else f"tdn-gui: no launcher of tdn's under {home}"
    )
    return 0
