"""Files tdn writes: whole or not at all, and with the mode any program gives a new file
(0o666 less the umask), not the private 0600 of a temporary file; a replaced file keeps its mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.files import current_umask, publish, replacing, stage, write_atomic
from support import CFG_DIR, shared_path
from tdn_cli.main import main


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_umask_is_read_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_every_writer_gives_a_new_file_the_usual_mode(tmp_path, umask):
    write_atomic(tmp_path / "a.csv", b"a,b\n")
    with replacing(tmp_path / "b.cfg") as f:
        f.write(b"[net]\n")
    publish(stage(tmp_path / "c.weights", b"\0" * 20), tmp_path / "c.weights")
    for name in ("a.csv", "b.cfg", "c.weights"):
        assert mode(tmp_path / name) == 0o666 & ~umask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.cfg", "c.weights"]  # no .part left


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"old\n")
    path.chmod(0o640)
    write_atomic(path, b"new\n")
    assert mode(path) == 0o640 and path.read_bytes() == b"new\n"


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with replacing(tmp_path / "half.csv") as f:
            f.write(b"half")
            raise RuntimeError("the disk is full")
    assert list(tmp_path.iterdir()) == []


def test_valid_csv_and_teach_export_are_readable_by_others(capsys, tmp_path, random_weights):
    """umask 022: what `tdn valid --csv` and `tdn teach --out` write is -rw-r--r--."""
    from PIL import Image

    old = os.umask(0o022)
    try:
        photos = tmp_path / "photos"
        for k, colour in enumerate([(200, 40, 40), (40, 200, 40)]):
            folder = photos / f"class{k}"
            folder.mkdir(parents=True)
            for j in range(3):
                Image.new("RGB", (48, 40), tuple(c + 10 * j for c in colour)).save(folder / f"{j}.png")
        weights = random_weights("tiny")
        rows = tmp_path / "rows.csv"
        assert main(["valid", str(CFG_DIR / "tiny.cfg"), str(weights), str(photos), "--csv", str(rows)]) == 0
        out_dir = tmp_path / "model"
        assert (
            main(
                [
                    "teach",
                    str(photos),
                    "--out",
                    str(out_dir),
                    "--base",
                    str(CFG_DIR / "tiny.cfg"),
                    "--weights",
                    str(weights),
                    "--folds",
                    "3",
                ]
            )
            == 0
        )
    finally:
        os.umask(old)
    capsys.readouterr()
    written = [rows, *sorted(out_dir.iterdir())]
    assert {p.suffix for p in written} == {".csv", ".cfg", ".weights", ".names"}
    assert all(mode(p) == 0o644 for p in written), {p.name: oct(mode(p)) for p in written}


def test_a_heatmap_pair_gets_the_usual_mode(capsys, tmp_path, tiny_weights):
    old = os.umask(0o027)
    try:
        assert (
            main(
                [
                    "classify",
                    "tiny",
                    "--weights",
                    str(tiny_weights),
                    str(shared_path("darknet", "data", "dog.jpg")),
                    "--cam",
                    str(tmp_path),
                ]
            )
            == 0
        )
    finally:
        os.umask(old)
    capsys.readouterr()
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {"dog.cam.npy": 0o640, "dog.cam.png": 0o640}
