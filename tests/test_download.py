"""Downloads against a real HTTP server on 127.0.0.1 serving real files, with endpoints that fail
once, always fail, stall, cut the body short or are missing."""
from __future__ import annotations

import collections
import http.server
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from pipeline.config import ReadConfig
from pipeline.sources import expand_sources, read_source
from pipeline.sources.download import DownloadError, download
from pipeline.stages.routing import KEPT, REJECTED

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "data" / "sample" / "web"
WARC_NAME = "cc-main-2020-34-sample.warc.gz"
FAST_RETRIES = ReadConfig(download_attempts=3, download_backoff_s=0.01, download_timeout_s=0.5)


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: collections.Counter = collections.Counter()

    def log_message(self, *args):       # keep test output clean
        pass

    def do_GET(self):
        self.hits[self.path] += 1
        kind, _, name = self.path.lstrip("/").partition("/")
        first = self.hits[self.path] == 1
        if kind == "down":
            return self.send_error(503, "Service Unavailable")
        if kind == "flaky" and first:
            return self.send_error(500, "Internal Server Error")
        if kind == "slow" and first:
            time.sleep(1.0)
        if kind == "drip":
            return self._drip()
        if kind == "redirect":          # /redirect/<url-encoded target>
            self.send_response(302)
            self.send_header("Location", urllib.parse.unquote(name))
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if kind == "list.txt":
            return self._send(f"files/{WARC_NAME}\n# comment\nfiles/dolma-sample-0000.warc.gz\n".encode())
        path = WEB / name
        if not path.is_file():
            return self.send_error(404, "Not Found")
        body = path.read_bytes()
        self._send(body, cut=kind == "cut")

    def _drip(self):
        """A body promised at 1,000 bytes, sent a byte every 0.1 s: each read succeeds, the whole never ends."""
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, body: bytes, cut: bool = False):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body[: len(body) // 2] if cut else body)
        except (BrokenPipeError, ConnectionResetError):   # the client gave up on a stalled response
            pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def read_all(url, config=FAST_RETRIES):
    records = list(read_source(url, config))
    return [r for tag, r in records if tag == KEPT], [r for tag, r in records if tag == REJECTED]


def test_download_reads_like_the_local_file(server):
    docs, rejected = read_all(f"{server}/files/{WARC_NAME}")
    local = [r for tag, r in read_source(str(WEB / WARC_NAME), FAST_RETRIES) if tag == KEPT]
    assert not rejected and len(docs) == 16
    assert [(d["id"], d["html"]) for d in docs] == [(d["id"], d["html"]) for d in local]
    assert docs[0]["source"] == f"{server}/files/{WARC_NAME}"


def test_server_error_then_success_is_retried(server):
    docs, rejected = read_all(f"{server}/flaky/{WARC_NAME}")
    assert len(docs) == 16 and not rejected
    assert _Handler.hits[f"/flaky/{WARC_NAME}"] == 2


def test_timeout_is_retried(server):
    docs, rejected = read_all(f"{server}/slow/cc_net-sample.warc.wet.gz")
    assert len(docs) == 3 and not rejected
    assert _Handler.hits["/slow/cc_net-sample.warc.wet.gz"] == 2


def test_url_that_always_fails_becomes_one_counted_rejection(server):
    url = f"{server}/down/{WARC_NAME}"
    docs, rejected = read_all(url)
    assert not docs
    [record] = rejected
    assert record["reason"] == "download_failed" and record["stage"] == "read"
    assert record["url"] == url == record["source"] == record["id"]
    assert "503" in record["error"] and "3 attempts" in record["error"]
    assert _Handler.hits[f"/down/{WARC_NAME}"] == 3


def test_truncated_body_is_retried_then_reported(server):
    docs, rejected = read_all(f"{server}/cut/{WARC_NAME}")
    assert not docs and rejected[0]["reason"] == "download_failed"
    assert "cut short" in rejected[0]["error"]
    assert _Handler.hits[f"/cut/{WARC_NAME}"] == 3


def test_missing_url_is_not_retried(server):
    docs, rejected = read_all(f"{server}/files/nothing.warc.gz")
    assert not docs and "404" in rejected[0]["error"]
    assert _Handler.hits["/files/nothing.warc.gz"] == 1


def test_size_cap(server):
    config = ReadConfig(download_attempts=3, download_backoff_s=0.01, max_download_bytes=10_000)
    docs, rejected = read_all(f"{server}/files/{WARC_NAME}", config)
    assert not docs and "exceeds max_download_bytes" in rejected[0]["error"]


def test_remote_list_file_with_base_url(server):
    config = ReadConfig(base_url=f"{server}/")
    sources = expand_sources([f"@{server}/list.txt"], config)
    assert sources == [f"{server}/files/{WARC_NAME}", f"{server}/files/dolma-sample-0000.warc.gz"]
    assert sum(len(read_all(source)[0]) for source in sources) == 16 + 22


def test_clean_command_reports_failed_downloads_in_stats(server, tmp_path):
    """Through the real command line: a URL that keeps failing is retried, then listed in stats.json
    and counted, while the URL that works is cleaned."""
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "clean", "--input", f"{server}/files/cc_net-sample.warc.wet.gz",
         f"{server}/down/clean-command.warc.gz", "--output", str(out), "--langs", "all", "--stages", "extract",
         "--set", "read.download_attempts=2", "--set", "read.download_backoff_s=0.01"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert [item["url"] for item in stats["failed_downloads"]] == [f"{server}/down/clean-command.warc.gz"]
    assert stats["rejected"]["download_failed"] == 1 and stats["kept_docs"] == 3
    assert stats["input_docs"] == stats["kept_docs"] + sum(stats["rejected"].values())
    assert _Handler.hits["/down/clean-command.warc.gz"] == 2


def test_a_server_that_drips_bytes_is_abandoned_at_the_deadline_retried_then_reported(server):
    config = ReadConfig(download_attempts=2, download_backoff_s=0.01, download_timeout_s=0.5, download_deadline_s=1.0)
    url = f"{server}/drip/{WARC_NAME}"
    docs, rejected = read_all(url, config)
    assert not docs
    [record] = rejected
    assert record["reason"] == "download_failed" and record["url"] == url
    assert "download_deadline_s" in record["error"] and "2 attempts" in record["error"]
    assert _Handler.hits[f"/drip/{WARC_NAME}"] == 2


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/x.warc.gz", "file:///etc/passwd", "data:,hello"])
def test_redirects_leave_http_never(server, tmp_path, target):
    with open(tmp_path / "body", "wb") as out, pytest.raises(DownloadError) as error:
        download(f"{server}/redirect/{urllib.parse.quote(target, safe='')}", out, FAST_RETRIES)
    assert target.split(":")[0] in str(error.value) and "\n" not in str(error.value)
    assert (tmp_path / "body").stat().st_size == 0


def test_a_redirect_to_another_host_is_followed(server, tmp_path):
    """CDNs and mirrors answer with a redirect to their own host: that is followed (http(s) only)."""
    other_host = server.replace("127.0.0.1", "localhost") + f"/files/{WARC_NAME}"
    with open(tmp_path / "body", "wb") as out:
        size = download(f"{server}/redirect/{urllib.parse.quote(other_host, safe='')}", out, FAST_RETRIES)
    assert size == (WEB / WARC_NAME).stat().st_size == (tmp_path / "body").stat().st_size


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x.warc.gz", "file:///etc/passwd"])
def test_only_http_and_https_urls_are_fetched(tmp_path, url):
    with open(tmp_path / "body", "wb") as out, pytest.raises(DownloadError, match="only http and https"):
        download(url, out, FAST_RETRIES)
