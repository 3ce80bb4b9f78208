"""`tdn-gui --install-launcher` / `--uninstall-launcher` through the real entry point, into a
throwaway $XDG_DATA_HOME: the menu entry runs this install's tdn-gui, the icons have their sizes,
and uninstalling leaves nothing of ours behind (and nothing of anyone else's touched)."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from support import ROOT
from tdn_gui import launcher
from tdn_gui.icon import ICON_SIZES

SVG = ROOT / "resources" / "tdn.svg"


def tdn_gui(*args: str, data_home) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_DATA_HOME=str(data_home), QT_QPA_PLATFORM="offscreen")
    return subprocess.run(
        [sys.executable, "-m", "tdn_gui", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def read_entry(path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def test_install_then_uninstall(tmp_path):
    home = tmp_path / "share"
    done = tdn_gui("--install-launcher", data_home=home)
    assert done.returncode == 0, done.stderr
    entry = home / "applications" / "tdn.desktop"
    pngs = {n: home / "icons" / "hicolor" / f"{n}x{n}" / "apps" / "tdn.png" for n in ICON_SIZES}
    svg = home / "icons" / "hicolor" / "scalable" / "apps" / "tdn.svg"
    written = sorted(p for p in home.rglob("*") if p.is_file())
    assert written == sorted([entry, svg, *pngs.values()])
    for path in written:
        assert f"  wrote {path}" in done.stdout.splitlines()
    for n, path in pngs.items():
        with Image.open(path) as image:
            assert (image.format, image.size, image.mode) == ("PNG", (n, n), "RGBA")
    assert svg.read_bytes() == SVG.read_bytes()

    fields = read_entry(entry)
    assert (fields["Type"], fields["Name"], fields["Icon"], fields["Terminal"]) == (
        "Application",
        "tdn",
        "tdn",
        "false",
    )
    assert launcher.MARK in fields
    # Exec runs this install's tdn-gui: the same command, asked for its version, answers
    argv = shlex.split(fields["Exec"])
    assert argv[-1] == "%F"
    assert argv[:-1] == launcher.command()
    version = subprocess.run([*argv[:-1], "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert version.stdout.startswith("tdn-gui ")
    validator = shutil.which("desktop-file-validate")
    if validator:
        check = subprocess.run([validator, str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and check.stdout == "", check.stdout + check.stderr

    done = tdn_gui("--uninstall-launcher", data_home=home)
    assert done.returncode == 0, done.stderr
    assert list(home.iterdir()) == []
    assert done.stdout.splitlines()[-1] == f"tdn-gui: removed the launcher ({len(written)} files)"
    if validator is None:
        pytest.skip(
            "desktop-file-validate is not installed (Debian: desktop-file-utils, which scripts/system-libs "
            "installs as root): all checked but the entry's validation"
        )


def test_uninstall_removes_only_its_own(tmp_path):
    home = tmp_path / "share"
    assert tdn_gui("--install-launcher", data_home=home).returncode == 0
    other_icon = home / "icons" / "hicolor" / "48x48" / "apps" / "other.png"
    other_icon.write_bytes(b"someone else's")
    entry = home / "applications" / "tdn.desktop"
    entry.write_text("[Desktop Entry]\nType=Application\nName=Another tdn\nExec=tdn\n")

    done = tdn_gui("--uninstall-launcher", data_home=home)
    assert done.returncode == 0, done.stderr
    assert f"  left {entry}: not written by tdn-gui" in done.stdout
    left = sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file())
    assert left == ["applications/tdn.desktop", "icons/hicolor/48x48/apps/other.png"]
    # and once nothing is left, it says so
    entry.unlink()
    assert "no launcher of tdn's" in tdn_gui("--uninstall-launcher", data_home=home).stdout


def test_exec_quotes_by_the_desktop_entry_rules():
    assert launcher.exec_value(["/opt/tdn/bin/tdn-gui"]) == "/opt/tdn/bin/tdn-gui %F"
    assert launcher.exec_value(["/my apps/tdn-gui"]) == '"/my apps/tdn-gui" %F'
    assert launcher.exec_value(["/a$b/python", "-m", "tdn_gui"]) == r'"/a\\$b/python" -m tdn_gui %F'
    assert launcher.exec_value(["/100%/tdn-gui"]) == "/100%%/tdn-gui %F"


def test_command_prefers_the_script_beside_python(tmp_path, monkeypatch):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    monkeypatch.setattr(sys, "executable", str(bin_ / "python"))
    monkeypatch.setattr(launcher.importlib.metadata, "version", lambda name: "0.1.0")
    assert launcher.command() == [str(bin_ / "python"), "-m", "tdn_gui"]  # no script there

    def not_installed(name):
        raise launcher.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(launcher.importlib.metadata, "version", not_installed)  # a bare source tree
    assert launcher.command() == ["env", f"PYTHONPATH={ROOT}", str(bin_ / "python"), "-m", "tdn_gui"]
    script = bin_ / "tdn-gui"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert launcher.command() == [str(script)]
