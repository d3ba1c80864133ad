"""The downloader against a real HTTP server on loopback, serving generated images."""

import functools
import http.server
import io
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from ctc.fetch import KODAK, FetchError, RemoteDataset, fetch
from ctc.images import pixel_sha256


def generated(seed: int, size=(24, 16)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


@pytest.fixture()
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1 from a thread; yields (base URL, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", www
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def remote(server):
    """Three generated PNGs on the server, and a dataset pinning their pixels."""
    url, www = server
    pins = {}
    for i in range(3):
        image = generated(i)
        Image.fromarray(image).save(www / f"img{i}.png")
        pins[f"img{i}.png"] = (24, 16, pixel_sha256(image))
    return RemoteDataset("gen", url, pins), www


def test_fetch_downloads_and_verifies_then_keeps_what_is_there(remote, tmp_path):
    ds, _ = remote
    seen = []
    paths = fetch(ds, tmp_path / "dest", on_file=lambda f, s: seen.append((f, s)))
    assert [p.name for p in paths] == ["img0.png", "img1.png", "img2.png"]
    assert all(s == "downloaded" for _, s in seen)
    seen.clear()
    fetch(ds, tmp_path / "dest", on_file=lambda f, s: seen.append((f, s)))
    assert all(s == "present" for _, s in seen)


def test_pins_are_on_pixels_so_a_reencoded_mirror_verifies(remote, tmp_path):
    ds, www = remote
    image = generated(1)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG", compress_level=0)  # other bytes, same pixels
    (www / "img1.png").write_bytes(buf.getvalue())
    fetch(ds, tmp_path / "dest")
    assert (tmp_path / "dest" / "img1.png").read_bytes() == buf.getvalue()


def test_a_wrong_image_fails_and_leaves_no_file(remote, tmp_path):
    ds, www = remote
    Image.fromarray(generated(99)).save(www / "img2.png")
    with pytest.raises(FetchError, match="img2.png: pixel checksum mismatch"):
        fetch(ds, tmp_path / "dest")
    left = sorted(p.name for p in (tmp_path / "dest").iterdir())
    assert left == ["img0.png", "img1.png"]  # verified ones stay, no partial file


def test_missing_file_and_unreachable_server(remote, tmp_path):
    ds, www = remote
    (www / "img0.png").unlink()
    with pytest.raises(FetchError, match="img0.png: download failed"):
        fetch(ds, tmp_path / "dest")
    dead = RemoteDataset("dead", "http://127.0.0.1:9/", ds.files)
    with pytest.raises(FetchError, match="download failed"):
        fetch(dead, tmp_path / "dest2", timeout=5)


def test_cli_fetch_kodak_from_a_mirror_checks_the_pinned_kodak_pixels(server, tmp_path):
    url, www = server
    for name in KODAK.files:  # generated stand-ins: the right names, the wrong pixels
        Image.fromarray(generated(1)).save(www / name)
    proc = subprocess.run(
        [sys.executable, "-m", "ctc.cli", "dataset", "fetch", "kodak", "--base-url", url,
         "--dest", str(tmp_path / "kodak")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("ctc: error: ")
    assert "kodim01.png: 24x16, expected 768x512" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "kodak").iterdir())
