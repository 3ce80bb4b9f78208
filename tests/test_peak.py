"""The FMA peak `tdn bench` measures, and the shares of it it reports."""

from __future__ import annotations

import re

import numpy as np
import pytest

from engine.kernels import peak
from support import SMALL_CFG
from tdn_cli.main import main


@pytest.mark.parametrize("lanes", peak.widths())
def test_fma_loop_does_its_arithmetic(lanes):
    """s = s*m + m, n times, in every accumulator: the loop's work is real, not optimised away."""
    buffer = np.linspace(0.1, 0.9, peak.ACCUMULATORS * lanes).astype(np.float32)
    m = buffer[:lanes].astype(np.float64)
    expected = buffer.astype(np.float64).reshape(peak.ACCUMULATORS, lanes)
    for _ in range(5):
        expected = expected * m + m
    peak.fma_loop(lanes)(buffer, 5)
    np.testing.assert_allclose(buffer.reshape(peak.ACCUMULATORS, lanes), expected, rtol=1e-5)


def test_widths_follow_the_cpu():
    import llvmlite.binding as llvm

    assert peak.widths() == ((8, 16) if llvm.get_host_cpu_features().get("avx512f") else (8,))


def test_bench_peak_prints_each_width(capsys):
    assert main(["bench", "--peak"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(\d+) floats \(\d+-bit\)\s+(\d+)\s+(\d+)$", out, re.M)
    assert [int(lanes) for lanes, _, _ in rows] == list(peak.widths())
    for _, one, every in rows:
        assert 0 < int(one) <= int(every) * 1.2


def test_bench_gives_gflops_and_shares_of_the_peak(capsys, tmp_path):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL_CFG)
    assert main(["bench", str(cfg), "--runs", "3", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    whole = re.search(r"a whole pass, batch 1: (\d+) GFLOP/s, (\d+)% of this machine's FMA peak \((\d+) GFLOP/s", out)
    assert whole and int(whole.group(2)) == pytest.approx(100 * int(whole.group(1)) / int(whole.group(3)), abs=1)
    from engine import parse_network
    from engine.summary import summarize

    bflops = {row.index: row.bflops for row in summarize(parse_network(cfg)).rows}
    rows = re.findall(r"^\s+(\d+) conv.*\s([\d.]+)\s+[\d.]+\s+(\d+)\s+\d+%(?:  (.+))?$", out, re.M)
    assert [int(i) for i, _, _, _ in rows] == [0, 2]
    for index, ms, rate, _ in rows:
        assert int(rate) == pytest.approx(bflops[int(index)] / float(ms) * 1e3, rel=0.05, abs=1)
    # how each conv runs: layer 0 by the register tiles of the width tests/conftest.py forces;
    # layer 2, a linear 1x1 conv after the [avgpool] it runs behind, says nothing
    assert [method for _, _, _, method in rows] == ["tiles, 8 floats", ""]


def test_bench_needs_a_model_or_peak(capsys):
    assert main(["bench"]) == 1
    assert "give a MODEL" in capsys.readouterr().err


def test_wide_vectors_stay_whole_in_the_machine_code():
    """16-float vectors compile to 512-bit registers (zmm), not pairs of 256-bit halves, even on
    CPUs whose LLVM tuning prefers 256-bit operations; 8-float ones to ymm."""
    if 16 not in peak.widths():
        pytest.skip("this CPU has no AVX-512")
    for lanes, register in ((16, "zmm"), (8, "ymm")):
        loop = peak.fma_loop(lanes)
        loop(np.zeros(peak.ACCUMULATORS * lanes, np.float32), 1)
        asm = "\n".join(loop.inspect_asm().values())
        fmas = [line for line in asm.splitlines() if "vfmadd" in line]
        assert len(fmas) >= peak.ACCUMULATORS and all(register in line for line in fmas), fmas[:3]


def test_bench_names_how_each_conv_runs():
    """`tdn bench`'s "run by" column follows the plan: register tiles of a width, Winograd, im2col."""
    import engine
    from cfg_builder import conv, net
    from engine.kernels import tuning
    from engine.weights import random_params
    from tdn_cli.bench_cmd import run_by

    text = net(52, 40, 64) + conv(64) + conv(16, groups=2) + conv(16)
    spec = engine.parse_network("methods.cfg", text)
    with tuning.forced(16):
        steps = engine.Network(spec, random_params(spec)).plan(1, 52, 40)
    assert [run_by(step) for step in steps] == ["Winograd", "im2col + GEMM", "tiles, 16 floats"]
