"""Streamed HTTP(S) downloads with retries: 5xx, 429, timeouts, dropped connections, bodies
shorter than their Content-Length and attempts that outlast `download_deadline_s` are retried with
exponential backoff; 4xx and oversized bodies fail at once. The body goes to a writable file chunk
by chunk, never whole into memory.

Only http and https are fetched, and redirects are followed only to http or https (urllib's own
opener would follow one to ftp://). A redirect to another host is followed: CDNs and mirrors serve
crawl files that way.
"""
from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import BinaryIO

from pipeline.config import ReadConfig

_USER_AGENT = "webcorpus-gpt/0.1 (+https://github.com/; corpus pipeline)"
_log = logging.getLogger(__name__)


class DownloadError(Exception):
    """The URL could not be fetched; the message says why (last error, attempts made)."""


class _Retryable(Exception):
    pass


_FETCHED_SCHEMES = ("http", "https")


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in _FETCHED_SCHEMES:
            raise DownloadError(f"redirect from {req.full_url} to {newurl} refused: only http and https are fetched")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _http_only_opener() -> urllib.request.OpenerDirector:
    """urllib's default opener without its ftp, file and data handlers."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), _HttpRedirectsOnly(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


_OPENER = _http_only_opener()


def download(url: str, out: BinaryIO, config: ReadConfig) -> int:
    """Write the body of `url` into `out` (truncated first on each attempt); returns its size."""
    if urllib.parse.urlsplit(url).scheme not in _FETCHED_SCHEMES:
        raise DownloadError(f"cannot fetch {url}: only http and https are fetched")
    wait = config.download_backoff_s
    for attempt in range(1, config.download_attempts + 1):
        out.seek(0)
        out.truncate()
        try:
            return _fetch_once(url, out, config)
        except _Retryable as error:
            if attempt == config.download_attempts:
                raise DownloadError(f"{error} (gave up after {attempt} attempts)") from None
            _log.warning("download of %s failed (%s); retry %d in %.1fs", url, error, attempt, wait)
            time.sleep(wait)
            wait *= 2
    raise DownloadError("download_attempts must be at least 1")


def _fetch_once(url: str, out: BinaryIO, config: ReadConfig) -> int:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"})
    # The read timeout bounds each wait for bytes; the deadline bounds the attempt, for servers that
    # send a byte now and then. read1 returns what has arrived, so the deadline is checked between
    # arrivals and overrun by at most one read timeout.
    deadline = time.monotonic() + config.download_deadline_s
    try:
        with _OPENER.open(request, timeout=config.download_timeout_s) as response:
            declared = response.headers.get("Content-Length")
            expected = int(declared) if declared and declared.isdigit() else None
            if expected is not None and expected > config.max_download_bytes:
                raise DownloadError(f"body of {expected} bytes exceeds max_download_bytes ({config.max_download_bytes})")
            received = 0
            while chunk := response.read1(config.chunk_bytes):
                received += len(chunk)
                if received > config.max_download_bytes:
                    raise DownloadError(f"body exceeds max_download_bytes ({config.max_download_bytes})")
                out.write(chunk)
                if time.monotonic() > deadline:
                    raise _Retryable(f"still downloading after download_deadline_s ({config.download_deadline_s:g} s), "
                                     f"{received} bytes received")
    except urllib.error.HTTPError as error:
        if error.code >= 500 or error.code == 429:
            raise _Retryable(f"HTTP {error.code} {error.reason}") from None
        raise DownloadError(f"HTTP {error.code} {error.reason}") from None
    except http.client.IncompleteRead as error:
        raise _Retryable(f"body cut short: {len(error.partial)} bytes received, {error.expected} more expected") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        # URLError wraps refused connections and DNS failures; OSError covers timeouts and resets.
        raise _Retryable(f"{type(error).__name__}: {getattr(error, 'reason', error)}") from None
    if expected is not None and received != expected:
        raise _Retryable(f"body cut short: {received} of {expected} bytes")
    return received
