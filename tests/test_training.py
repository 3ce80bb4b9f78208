"""Training against darknet C's recorded run, the update rule and the schedule, and the
trainer's refusals (memory, layers that cannot train)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.errors import EngineError
from engine.spec import parse_network
from engine.training import Trainer, TrainingError, read_settings
from engine.weights import random_params, read_weights
from support import shared_path

KERNELS = ["compiled", "portable"]


def oracle_files():
    root = shared_path("darknet-train-oracle")
    return root, json.loads((root / "oracle.json").read_text())


def assert_like_darknet(params, expected) -> None:
    """The oracle's tolerance: every parameter within 1e-5 + 1e-4*|darknet's value|."""
    for i, (mine, theirs) in enumerate(zip(params, expected)):
        for name, value in theirs.items():
            error = np.abs(mine[name] - value) - (1e-5 + 1e-4 * np.abs(value))
            assert error.max() <= 0, f"layer {i} {name}: {np.abs(mine[name] - value).max():.3g} from darknet's"


@pytest.mark.parametrize("kernels", KERNELS)
def test_training_matches_darknets_recorded_run(kernels):
    root, oracle = oracle_files()
    spec = parse_network(root / "net.cfg")
    header, params = read_weights(root / "start.weights", spec)
    trainer = Trainer(spec, params, read_settings(spec), seen=header.seen, compiled=kernels == "compiled")
    for call, darknet_loss in zip(oracle["batches"], oracle["loss_per_call"]):
        x = np.stack(
            [np.asarray(Image.open(root / "images" / path).convert("RGB"), np.float32) / 255 for path, _ in call]
        )
        loss = trainer.train_call(x, np.array([label for _, label in call])) / len(call)
        assert loss == pytest.approx(darknet_loss, rel=1e-5)
    trained_header, trained = read_weights(root / "trained.weights", spec)
    assert trainer.seen == trained_header.seen == 64
    assert trainer.batches_done == 4
    assert_like_darknet(params, trained)


# --- the update rule and the schedule ------------------------------------------------------

NET = "[net]\nwidth=4\nheight=4\nchannels=2\n"
LINEAR_HEAD = "[connected]\noutput=3\nactivation=linear\n\n[softmax]\n"


def trainer_for(net_options: str, layers: str = LINEAR_HEAD, seed: int = 0, **kw) -> Trainer:
    text = NET + net_options + "\n" + layers
    spec = parse_network("update.cfg", text)
    return Trainer(spec, random_params(spec, seed), read_settings(spec, text), compiled=False, **kw)


def batch_of(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4, 4, 2)).astype(np.float32), rng.integers(0, 3, n)


def gradients(trainer: Trainer, x, labels) -> list[dict]:
    """minus the summed gradient of each learned array for x (darknet's *_updates before the
    update), from a trainer that is not updated."""
    trainer.forward(x, trainer.truth(labels))
    trainer.backward(x)
    found = [{name: u.copy() for name, u in step.updates.items()} for step in trainer.steps]
    for step in trainer.steps:
        for u in step.updates.values():
            u[...] = 0
    return found


def test_sgd_update_is_darknets_rule():
    """Two updates: weights += rate/batch * (g - decay*batch*w) + momentum's share of the last
    step; biases the same without decay."""
    options = "batch=4\nlearning_rate=0.5\nmomentum=0.8\ndecay=0.01\n"
    trainer, probe = trainer_for(options), trainer_for(options)
    x, labels = batch_of(4)
    w0, b0 = (trainer.params[0][name].astype(np.float64) for name in ("weights", "biases"))
    g = gradients(probe, x, labels)[0]
    trainer.train_update(x, labels)
    w1 = w0 + 0.5 / 4 * (g["weights"] - 0.01 * 4 * w0)
    b1 = b0 + 0.5 / 4 * g["biases"]
    np.testing.assert_allclose(trainer.params[0]["weights"], w1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(trainer.params[0]["biases"], b1, rtol=1e-5, atol=1e-7)
    for name, value in (("weights", w1), ("biases", b1)):
        probe.params[0][name][...] = value
    g2 = gradients(probe, x, labels)[0]
    trainer.train_update(x, labels)
    w_momentum = 0.8 * (g["weights"] - 0.01 * 4 * w0)
    w2 = w1 + 0.5 / 4 * (g2["weights"] - 0.01 * 4 * w1 + w_momentum)
    np.testing.assert_allclose(trainer.params[0]["weights"], w2, rtol=1e-4, atol=1e-6)
    assert trainer.seen == 8 and trainer.batches_done == 2


def test_subdivisions_accumulate_into_one_update():
    """batch=6 in 3 calls of 2 images updates once, exactly as one call of 6 does (no batch norm)."""
    whole = trainer_for("batch=6\nlearning_rate=0.3\n")
    split = trainer_for("batch=6\nsubdivisions=3\nlearning_rate=0.3\n")
    x, labels = batch_of(6)
    start = split.params[0]["weights"].copy()
    split.train_call(x[:2], labels[:2])
    split.train_call(x[2:4], labels[2:4])
    np.testing.assert_array_equal(split.params[0]["weights"], start)  # no update before the third call
    split.train_call(x[4:], labels[4:])
    whole.train_update(x, labels)
    np.testing.assert_allclose(split.params[0]["weights"], whole.params[0]["weights"], rtol=1e-5, atol=1e-7)
    assert split.batches_done == whole.batches_done == 1 and split.seen == 6


def test_adam_first_step_moves_each_weight_by_the_rate():
    """Adam's first bias-corrected step is rate * u / (|u| + eps) for each value."""
    trainer, probe = trainer_for("batch=4\nadam=1\nlearning_rate=0.01\ndecay=0\n"), trainer_for("batch=4\n")
    x, labels = batch_of(4)
    g = gradients(probe, x, labels)[0]["weights"]
    start = trainer.params[0]["weights"].copy()
    trainer.train_update(x, labels)
    step = trainer.params[0]["weights"] - start
    big = np.abs(g) > 1e-3
    np.testing.assert_allclose(step[big], 0.01 * np.sign(g[big]), rtol=1e-3)


@pytest.mark.parametrize(
    "options,expected",
    [
        ("policy=constant", {0: 1.0, 50: 1.0}),
        ("policy=step\nstep=10\nscale=0.5", {9: 1.0, 10: 0.5, 25: 0.25}),
        ("policy=steps\nsteps=10,20\nscales=.1,.5", {9: 1.0, 10: 0.1, 19: 0.1, 20: 0.05, 99: 0.05}),
        ("policy=exp\ngamma=0.9", {0: 1.0, 2: 0.81}),
        ("policy=poly\npower=2\nmax_batches=100", {0: 1.0, 50: 0.25, 100: 0.0}),
        ("policy=sigmoid\ngamma=1\nstep=10", {10: 0.5, 0: 1 / (1 + np.exp(-10))}),
        ("policy=poly\npower=2\nmax_batches=100\nburn_in=10", {5: 0.5**2, 10: 0.81}),
    ],
)
def test_learning_rate_policies(options, expected):
    settings = trainer_for(f"learning_rate=1\n{options}").settings
    for batch_num, rate in expected.items():
        assert settings.rate(batch_num) == pytest.approx(rate, rel=1e-6), f"update {batch_num}"


def test_random_policy_stays_within_the_rate():
    settings = trainer_for("learning_rate=2\npolicy=random\npower=1").settings
    rates = [settings.rate(i, np.random.default_rng(i)) for i in range(200)]
    assert 0 <= min(rates) and max(rates) <= 2 and np.std(rates) > 0.3


def test_layer_learning_rate_and_stopbackward():
    """learning_rate=0 holds a layer still; stopbackward=1 holds it and every layer before it
    (without decay: darknet's update still decays the weights of layers that had no backward)."""
    layers = (
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\nstopbackward=1\n\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\nlearning_rate=0\n\n"
        "[convolutional]\nfilters=4\nsize=1\nactivation=leaky\n\n" + LINEAR_HEAD
    )
    trainer = trainer_for("batch=4\nlearning_rate=0.1\ndecay=0\n", layers)
    before = [p["weights"].copy() for p in trainer.params[:4]]
    trainer.train_update(*batch_of(4))
    np.testing.assert_array_equal(trainer.params[0]["weights"], before[0])
    np.testing.assert_array_equal(trainer.params[1]["weights"], before[1])
    assert not np.array_equal(trainer.params[2]["weights"], before[2])
    assert not np.array_equal(trainer.params[3]["weights"], before[3])


def test_training_lowers_the_loss():
    trainer = trainer_for("batch=8\nlearning_rate=0.1\nmomentum=0.9\n")
    x, labels = batch_of(8)
    losses = [trainer.train_update(x, labels) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


# --- refusals ------------------------------------------------------------------------------


def test_training_memory_goes_through_the_budget(monkeypatch):
    text = (
        NET.replace("width=4\nheight=4", "width=64\nheight=64")
        + "batch=256\n\n"
        + "[convolutional]\nfilters=64\nsize=3\npad=1\nactivation=leaky\n\n"
        + LINEAR_HEAD
    )
    spec = parse_network("big.cfg", text)
    monkeypatch.setenv("TDN_MEMORY_BUDGET", "64M")
    with pytest.raises(EngineError) as info:
        Trainer(spec, random_params(spec), read_settings(spec, text), compiled=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("training big (256 images a call) needs ")
    assert "over the memory budget of 64.0 MiB" in message


@pytest.mark.parametrize(
    "layers,named",
    [
        ("[connected]\noutput=3\nactivation=linear\n\n[cost]\ntype=masked\n", "type=masked cannot train"),
        ("[connected]\noutput=3\nactivation=linear\n\n[softmax]\nnoloss=1\n", "nothing to learn from"),
        ("[maxpool]\nsize=2\nstride=2\n\n[softmax]\n", "nothing to train"),
    ],
)
def test_untrainable_networks_are_named(layers, named):
    text = NET + "batch=2\n\n" + layers
    spec = parse_network("odd.cfg", text)
    with pytest.raises(TrainingError) as info:
        Trainer(spec, random_params(spec), read_settings(spec, text), compiled=False)
    assert named in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "options,message",
    [
        ("policy=fast", "odd.cfg:5: [net] unknown learning-rate policy 'fast'"),
        ("policy=steps\nsteps=10,20\nscales=.1", "steps= lists 2 values but scales= lists 1"),
        ("batch=4\nsubdivisions=8", "subdivisions=8 must be from 1 to batch=4"),
        ("min_crop=40\nmax_crop=20", "give min_crop <= max_crop"),
    ],
)
def test_bad_training_settings_name_the_line(options, message):
    text = NET + options + "\n\n" + LINEAR_HEAD
    with pytest.raises(EngineError) as info:
        read_settings(parse_network("odd.cfg", text), text)
    assert message in str(info.value)


def test_training_kernels_know_whether_they_are_cached(tmp_path):
    """`tdn train` says it is compiling when Numba's cache lacks the training kernels."""
    import os
    import subprocess
    import sys

    from engine.kernels import backprop_compiled
    from support import ROOT

    trainer = trainer_for(
        "batch=2\n",
        "[convolutional]\nfilters=2\nsize=3\npad=1\nbatch_normalize=1\n"
        "activation=leaky\n\n[maxpool]\nsize=2\nstride=2\n\n" + LINEAR_HEAD,
    )
    trainer.k = backprop_compiled
    for step in trainer.steps:
        if hasattr(step, "k"):
            step.k = backprop_compiled
    trainer.train_update(*batch_of(2))
    assert backprop_compiled.in_cache()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    fresh = subprocess.run(
        [sys.executable, "-c", "from engine.kernels import backprop_compiled as b; print(b.in_cache())"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert fresh.stdout.strip() == "False", fresh.stderr
