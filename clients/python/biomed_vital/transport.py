"""HTTP with urllib: the API key only to the API's own origin, and retries on 429 (and on 503
with ``Retry-After``, which the export endpoint sends when it is busy), waiting as the server asks."""
from __future__ import annotations

import email.utils
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .errors import ApiError

RETRYABLE = (429, 503)


def origin(url: str) -> Tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _KeepKeyOnOrigin(urllib.request.HTTPRedirectHandler):
    """urllib copies every header onto a redirect; a redirect to another origin (say, an object
    store) must not carry the API key."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Optional[urllib.request.Request]:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin(newurl) != origin(req.full_url):
            new.remove_header("Authorization")
        return new


_opener = urllib.request.build_opener(_KeepKeyOnOrigin)


class Transport:
    """Sends requests for one API: ``Authorization`` goes to the API's origin and nowhere else (a
    signed export link on another host needs none, and must not receive the key)."""

    def __init__(
        self,
        api_url: str,
        key: Optional[str],
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_seconds: float = 1.0,
        max_wait_seconds: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "biomed-vital-python",
    ) -> None:
        self.api_url = api_url
        self.key = key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_wait_seconds = max_wait_seconds
        self.sleep = sleep
        self.user_agent = user_agent

    def headers_for(self, url: str, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        headers = {"User-Agent": self.user_agent}
        if self.key and origin(url) == origin(self.api_url):
            headers["Authorization"] = f"Bearer {self.key}"
        headers.update(extra or {})
        return headers

    def open(self, method: str, url: str, body: Optional[bytes] = None, headers: Optional[Mapping[str, str]] = None) -> Any:
        """The response (open, for streaming) of the first attempt that is not asked to wait.
        Other HTTP errors raise ``ApiError`` with the code of the API's JSON body when it has one."""
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=body, method=method, headers=self.headers_for(url, headers))
            try:
                return _opener.open(request, timeout=self.timeout)
            except urllib.error.HTTPError as error:
                wait = self._wait_before_retry(error, attempt)
                if wait is None:
                    raise error_from_response(error) from None
                error.close()
                self.sleep(wait)
                attempt += 1

    def _wait_before_retry(self, error: urllib.error.HTTPError, attempt: int) -> Optional[float]:
        if error.code not in RETRYABLE or attempt >= self.max_retries:
            return None
        asked = retry_after_seconds(error.headers.get("Retry-After"))
        if asked is None:
            if error.code == 503:
                return None  # an outage, not a request to come back later
            asked = self.backoff_seconds * (2 ** attempt)
        return min(asked, self.max_wait_seconds)

    def post_json(self, url: str, payload: Mapping[str, Any]) -> Dict[str, Any]:
        body = json.dumps(payload).encode("utf-8")
        return self.post(url, body, "application/json")

    def post(self, url: str, body: bytes, content_type: str, extra: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        headers = {"Content-Type": content_type, "Accept": "application/graphql-response+json, application/json"}
        headers.update(extra or {})
        with self.open("POST", url, body, headers) as response:
            return json.loads(response.read().decode("utf-8"))


def error_from_response(error: urllib.error.HTTPError) -> ApiError:
    """The API's own errors from a 4xx/5xx body (GraphQL shape), else the HTTP status."""
    raw = error.read()
    error.close()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        return ApiError.from_graphql_errors(body["errors"], status=error.code)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        # The file and export routes answer {error: CODE, message}.
        return ApiError(str(body.get("message") or body["error"]), body["error"], status=error.code, errors=[body])
    text = raw.decode("utf-8", "replace").strip()[:200] or error.reason
    return ApiError(f"HTTP {error.code}: {text}", f"HTTP_{error.code}", status=error.code)
