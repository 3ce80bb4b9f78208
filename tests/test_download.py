"""engine.download and `tdn download`/`tdn models` against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import argparse
import errno
import hashlib
import os
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine import download as dl
from engine import registry
from engine.download import DownloadCancelled, DownloadError, download, download_model
from support import SMALL_CFG

BODY = bytes(range(256)) * 1200  # 307,200 bytes: several chunks


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # dropped connections are the point
        pass


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append(self.path)
        kind, body = srv.routes.get(self.path, ("status", 404))
        try:
            if kind == "status":
                self.send_error(body)
                return
            declared = len(body) + 1000 if kind == "truncated" else len(body)
            self.send_response(200)
            if kind != "nolength":
                self.send_header("Content-Length", str(declared))
            self.end_headers()
            if kind == "drop":  # half the body, then a TCP reset
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            elif kind == "slow":
                for i in range(0, len(body), 4096):
                    self.wfile.write(body[i : i + 4096])
                    self.wfile.flush()
                    time.sleep(0.01)
            elif kind == "stall":
                self.wfile.write(body[:1000])
                self.wfile.flush()
                time.sleep(3)
            else:  # file, truncated (then HTTP/1.0 closes), nolength
                self.wfile.write(body)
        except OSError:  # the client went away (cancel): nothing to do
            pass


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes, srv.requests = {}, []
    srv.url = lambda path: f"http://127.0.0.1:{srv.server_address[1]}{path}"
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    d.mkdir()
    monkeypatch.setenv("TDN_CACHE_DIR", str(d))
    return d


def test_success_reports_progress_and_second_call_makes_no_request(server, cache):
    server.routes["/f.bin"] = ("file", BODY)
    calls = []
    out = download(
        server.url("/f.bin"),
        cache / "f.bin",
        expected_size=len(BODY),
        sha256=hashlib.sha256(BODY).hexdigest(),
        progress=lambda d, t: calls.append((d, t)),
    )
    assert out == cache / "f.bin" and out.read_bytes() == BODY
    assert os.listdir(cache) == ["f.bin"]
    done = [d for d, _ in calls]
    assert done[0] == 0 and done[-1] == len(BODY) and done == sorted(set(done))
    assert {t for _, t in calls} == {len(BODY)}
    assert len(server.requests) == 1
    download(server.url("/f.bin"), cache / "f.bin", expected_size=len(BODY), sha256=hashlib.sha256(BODY).hexdigest())
    assert len(server.requests) == 1


def test_wrong_size_existing_file_is_replaced(server, cache):
    server.routes["/f.bin"] = ("file", BODY)
    (cache / "f.bin").write_bytes(BODY[:100])
    download(server.url("/f.bin"), cache / "f.bin", expected_size=len(BODY))
    assert (cache / "f.bin").read_bytes() == BODY and os.listdir(cache) == ["f.bin"]


@pytest.mark.parametrize(
    "route, kwargs, says",
    [
        (("status", 404), {}, "HTTP 404"),
        (("status", 500), {}, "HTTP 500"),
        (("truncated", BODY), {}, f"closed after {len(BODY)} of {len(BODY) + 1000} bytes"),
        (("drop", BODY), {}, r"(lost|closed) after \d+ "),
        (("file", BODY), {"expected_size": 1234}, f"sends {len(BODY)} bytes, expected 1234"),
        (("nolength", BODY), {"expected_size": (16, 20)}, f"got {len(BODY)} bytes, expected 16 or 20"),
        (("file", BODY), {"sha256": "0" * 64}, "does not match the pinned"),
        (("stall", BODY), {"timeout": 0.5}, r"no data for 0\.5 s"),
    ],
)
def test_failures_leave_the_folder_as_it_was(server, cache, route, kwargs, says):
    (cache / "other.txt").write_text("untouched")
    server.routes["/f.bin"] = route
    url = server.url("/f.bin")
    with pytest.raises(DownloadError) as e:
        download(url, cache / "f.bin", **kwargs)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and re.search(says, msg)
    assert f"copy it to {cache / 'f.bin'}" in msg
    assert not isinstance(e.value, DownloadCancelled)
    assert os.listdir(cache) == ["other.txt"]


def test_connection_refused_names_url_and_manual_route(cache):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}.*copy it to"):
        download(f"http://127.0.0.1:{port}/x", cache / "x")
    assert os.listdir(cache) == []


def test_cancel_from_another_thread_mid_download(server, cache):
    server.routes["/slow"] = ("slow", BODY)  # ~0.75 s in total
    cancel, seen = threading.Event(), []
    threading.Timer(0.1, cancel.set).start()
    with pytest.raises(DownloadCancelled, match="cancelled"):
        download(server.url("/slow"), cache / "f.bin", cancel=cancel, progress=lambda d, t: seen.append(d))
    assert 0 < seen[-1] < len(BODY)  # it really was mid-file
    assert os.listdir(cache) == []


def test_cancel_set_before_start_sends_no_request(server, cache):
    server.routes["/f.bin"] = ("file", BODY)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        download(server.url("/f.bin"), cache / "f.bin", cancel=cancel)
    assert server.requests == [] and os.listdir(cache) == []


def test_disk_full_and_interrupt_remove_the_part_file(server, cache, monkeypatch):
    server.routes["/f.bin"] = ("file", BODY)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", full)  # what files.replacing calls before the rename
        with pytest.raises(DownloadError, match="No space left on device"):
            download(server.url("/f.bin"), cache / "f.bin")
    assert os.listdir(cache) == []

    def interrupt(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(server.url("/f.bin"), cache / "f.bin", progress=interrupt)
    assert os.listdir(cache) == []


# --- download_model: weights from the engine's writer on a small cfg, lists cut to 1000 lines

NAMES = "".join(f"class {i}\n" for i in range(1500))
WNIDS = "".join(f"n{i:08d}\n" for i in range(1500))


@pytest.fixture
def mirror(server, tmp_path, monkeypatch):
    """A small 'darknet' model: our cfg folder holds it, the server holds its weights and lists."""
    import engine

    cfgs = tmp_path / "cfg"
    cfgs.mkdir()
    (cfgs / "darknet.cfg").write_text(SMALL_CFG)
    monkeypatch.setattr(registry.paths, "cfg_dir", lambda: cfgs)
    engine.write_random_weights(cfgs / "darknet.cfg", tmp_path / "w", seed=0)
    weights = (tmp_path / "w").read_bytes()
    server.routes.update(
        {
            "/darknet.weights": ("file", weights),
            "/imagenet.shortnames.list": ("file", NAMES.encode()),
            "/imagenet.labels.list": ("file", WNIDS.encode()),
        }
    )
    return weights


def test_download_model_fetches_weights_and_first_1000_lines(server, cache, mirror):
    assert not registry.is_downloaded("darknet")
    path = download_model("darknet", base_url=server.url(""))
    assert path == registry.weights_path("darknet") and path.read_bytes() == mirror
    assert registry.is_downloaded("darknet")
    names = registry.names_path().read_text().splitlines()
    assert names == NAMES.splitlines()[:1000]
    assert registry.labels_path().read_text().splitlines() == WNIDS.splitlines()[:1000]
    assert registry.find_names() == registry.names_path()
    assert sorted(os.listdir(cache)) == ["darknet.weights", "imagenet.names", "imagenet.wnids"]
    n = len(server.requests)
    download_model("darknet", base_url=server.url(""))
    assert len(server.requests) == n == 3


def test_download_model_wrong_size_says_weights_or_place_by_hand(server, cache, mirror):
    server.routes["/darknet.weights"] = ("file", mirror[:-2])
    with pytest.raises(DownloadError, match=r"--weights PATH"):
        download_model("darknet", base_url=server.url(""))
    assert os.listdir(cache) == []


def test_short_names_list_is_an_error(server, cache, mirror):
    server.routes["/imagenet.shortnames.list"] = ("file", b"a\nb\n")
    with pytest.raises(DownloadError, match="has 2 lines, expected at least 1000"):
        download_model("darknet", base_url=server.url(""))
    assert os.listdir(cache) == ["darknet.weights"]


# --- the CLI commands, through argparse in-process


def _cli(*argv):
    from tdn_cli import models_cmd

    parser = argparse.ArgumentParser(prog="tdn")
    sub = parser.add_subparsers(dest="command", required=True)
    models_cmd.add_download_parser(sub)
    models_cmd.add_models_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_download_then_models(server, cache, mirror, capsys):
    assert _cli("download", "darknet", "--base-url", server.url("")) == 0
    assert str(registry.weights_path("darknet")) in capsys.readouterr().out
    assert _cli("download", "darknet", "--base-url", server.url("")) == 0
    assert "already downloaded" in capsys.readouterr().out and len(server.requests) == 3
    assert _cli("models") == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("darknet "))
    assert "Darknet Reference" in row and " yes " in row
    assert f" {registry.expected_weights_bytes('darknet')} " in row and row.endswith("darknet.weights")
    assert f"cache: {cache}" in out and "--weights PATH" in out


def test_cli_download_errors_are_one_line_exit_1(server, cache, mirror, capsys):
    assert _cli("download", "nosuch") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'nosuch'" in err
    server.routes["/darknet.weights"] = ("status", 404)
    assert _cli("download", "darknet", "--base-url", server.url("")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HTTP 404" in err and "darknet.weights" in err
    # `all` starts with tiny, whose cfg this test's cfg folder lacks: still one line, exit 1
    assert _cli("download", "all", "--base-url", server.url("")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot check tiny.weights" in err and "tiny.cfg" in err
    assert os.listdir(cache) == []


def test_tqdm_progress_callback_runs_and_closes(monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)  # a bar shows only on a terminal
    bar = dl.tqdm_progress("darknet")
    for done in (0, 10, 100):  # running totals, as download() reports them
        bar(done, 100)
    drawn = terminal.getvalue()
    assert "darknet: 100%" in drawn and "100/100" in drawn and drawn.endswith("\n")  # closed at the total
    bar.close()  # the caller's close after that draws nothing more
    assert terminal.getvalue() == drawn
    failed = dl.tqdm_progress("tiny")
    failed(0, 100)
    failed(30, 100)
    failed.close()  # after a failure: the bar ends where it stopped
    stopped = terminal.getvalue()[len(drawn) :]
    assert "tiny:  30%" in stopped and stopped.endswith("\n")
    dl.tqdm_progress("never").close()  # closing a bar that never started is harmless
    assert "never" not in terminal.getvalue()
