"""The status bar's word on the kernels: which ones classify, the compile's progress while the
fast ones arrive, the time per image, and the switch announced once."""

from __future__ import annotations

import re

from engine.kernels import KernelStatus
from tdn_gui.views.kernel_status import COMPILING


def test_status_bar_follows_the_kernels(qtbot, open_window, small_model, media):
    window = open_window([*small_model.argv(), media.good[0]])
    label = window.kernel_label
    # The tests run on the portable kernels (TDN_KERNELS=portable), and the worker says so
    qtbot.waitUntil(lambda: label.isVisible() and "ms per image" in label.text(), timeout=10_000)
    assert label.text().startswith("Portable kernels (TDN_KERNELS=portable)")
    ms = float(re.search(r"(\d+) ms per image", label.text()).group(1))
    assert ms >= 0

    # A fresh install: the worker reports a compile under way, then the compiled kernels
    assert not label.progress.isVisible()
    window.worker.kernels_changed.emit(KernelStatus("auto", 3, 10, True, 0.4))
    assert label.text().startswith(COMPILING) and "ms per image" in label.text()
    assert label.progress.isVisible() and label.progress.value() == 40
    window.worker.kernels_changed.emit(KernelStatus("auto", 10, 10, False, 1.0))
    assert window.statusBar().currentMessage().startswith("The fast kernels are ready")
    assert label.text() == "Compiled kernels"  # no time per image on them yet
    assert not label.progress.isVisible()
    window.image_view.reclassify()
    qtbot.waitUntil(lambda: "ms per image" in label.text(), timeout=10_000)
    assert re.fullmatch(r"Compiled kernels · \d+ ms per image \(portable: \d+ ms\)", label.text())

    # A compile that stopped short (no compiler at work, kernels missing) says where to look
    window.worker.kernels_changed.emit(KernelStatus("auto", 4, 10, False, 0.5))
    assert "did not compile" in label.text() and "tdn compile" in label.text()
