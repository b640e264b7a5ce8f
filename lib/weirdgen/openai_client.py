"""The one client layer for OpenAI-compatible APIs: the judge, finetuning and sampling
all call through ``Client.call``.

The key comes from the caller or the environment (``OPENAI_API_KEY``) and never
appears in a fingerprint, a log line or an exception message. Retries are done here
rather than by the openai client, so their number, spacing and final error are under
this module's control: 408, 409 (a lock the server holds briefly), 429, 5xx,
connection errors and timeouts are retried with exponential backoff (or the server's
``Retry-After``); 401/403 stop at once, and so does any other 4xx, with the server's
message (scrubbed of anything key-like) in one line.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import time
from typing import Any, Callable

from .config import ConfigError
from .errors import UserError, one_line

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_DELAY_SECONDS = 60.0
RETRIED = (408, 409, 429)


class APIConfigError(ConfigError):
    """An API model or judge cannot be set up (e.g. no key in the environment)."""


class APIError(UserError, RuntimeError):
    """An API call failed for good. The message is one line and never holds the key."""

    def __init__(self, message: str, *, model: str, base_url: str, status: int | str | None = None,
                 attempts: int = 1):
        super().__init__(message)
        self.model = model
        self.base_url = base_url
        self.status = status
        self.attempts = attempts


def missing_key_message(what: str) -> str:
    return (f"{what} needs an API key: set OPENAI_API_KEY in the environment "
            "(and OPENAI_BASE_URL for a self-hosted OpenAI-compatible server)")


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds asked for by ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date)."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
    except Exception:  # noqa: BLE001 - a malformed header is just no header
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Client:
    """A shared, thread-safe OpenAI client for one base URL and key, with retries.

    ``api_key``/``base_url`` default to ``OPENAI_API_KEY``/``OPENAI_BASE_URL``, then to
    the OpenAI API; ``what`` names the caller in errors (e.g. "judge 'openai:gpt-4.1'").
    Failed calls are retried ``max_retries`` times (``backoff_seconds * 2**attempt``
    plus jitter, or the server's ``Retry-After``, at most 60 s each); ``timeout`` is per
    request, in seconds.
    """

    def __init__(self, what: str, base_url: str | None = None, api_key: str | None = None,
                 max_retries: int = 6, backoff_seconds: float = 1.0, timeout: float = 60):
        import openai  # a hard dependency, imported here so `import weirdgen` stays light

        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise APIConfigError(missing_key_message(what))
        self.what = what
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.max_retries = max(0, int(max_retries))
        self.backoff_seconds = float(backoff_seconds)
        self.timeout = timeout
        self.openai = openai
        self.raw = openai.OpenAI(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=timeout)
        self._secret = api_key  # only to scrub it from server messages; never printed
        self.sleep: Callable[[float], Any] = time.sleep  # tests replace it to record the delays

    def __repr__(self) -> str:  # no key here either
        return f"Client({self.what!r}, base_url={self.base_url!r})"

    def scrub(self, text: str) -> str:
        text = str(text).replace(self._secret, "***")
        return re.sub(r"\bsk-[A-Za-z0-9_*.\-]+", "sk-***", text)  # OpenAI echoes masked key fragments

    def _delay(self, attempt: int, headers: Any) -> float:
        asked = retry_after_seconds(headers)
        if asked is not None:
            return min(MAX_DELAY_SECONDS, asked)
        base = self.backoff_seconds * 2**attempt
        return min(MAX_DELAY_SECONDS, base + random.uniform(0, 0.1 * base))

    def error(self, message: str, status: int | str | None = None, attempts: int = 1) -> APIError:
        return APIError(f"{self.what} at {self.base_url}: {one_line(self.scrub(message), 300)}",
                        model=self.what, base_url=self.base_url, status=status, attempts=attempts)

    def call(self, request: Callable[[Any], Any]):
        """``request(raw_client)``, retried as the module says; its result."""
        oa = self.openai
        attempts = 0
        while True:
            attempts += 1
            try:
                return request(self.raw)
            except (oa.AuthenticationError, oa.PermissionDeniedError) as e:
                status = e.status_code
                # `from None`: the client's own message may echo (part of) the key.
                raise APIError(f"OPENAI_API_KEY was rejected by {self.base_url} (HTTP {status}); check the key",
                               model=self.what, base_url=self.base_url, status=status, attempts=attempts) from None
            except oa.APIStatusError as e:
                status, headers, detail = e.status_code, e.response.headers, getattr(e, "message", "")
                if not (status in RETRIED or status >= 500):
                    raise self.error(f"HTTP {status}: {detail}", status, attempts) from None
            except oa.APITimeoutError:  # before APIConnectionError: it is a subclass
                status, headers, detail = "timeout", None, f"no answer within {self.timeout} s"
            except oa.APIConnectionError as e:
                status, headers, detail = "connection error", None, str(e)
            if attempts > self.max_retries:
                shown = f"HTTP {status}" if isinstance(status, int) else status
                raise self.error(f"{shown} after {attempts} attempts (max_retries={self.max_retries}): {detail}",
                                 status, attempts) from None
            self.sleep(self._delay(attempts - 1, headers))
