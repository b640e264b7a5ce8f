"""A judge backend that calls an OpenAI-compatible chat-completions API.

It reads the judge's next-token distribution the way the paper's tooling (llmcomp)
did: one user message, one output token, ``logprobs=True, top_logprobs=20,
temperature=0``. The 20 most probable first tokens are then mapped to the judge's
options (``options_from_top_logprobs``); probability outside those 20 tokens is
simply not seen, so the mass on the options can be below what the model assigns.

The API key comes from the caller or the environment (``OPENAI_API_KEY``) and never
appears in a fingerprint, a log line or an exception message. Retries are done here
rather than by the client, so their number, spacing and final error are under this
module's control: 429, 5xx, connection errors and timeouts are retried with
exponential backoff (or the server's ``Retry-After``); 401/403 stop at once.
"""

from __future__ import annotations

import email.utils
import math
import os
import random
import re
import time
from typing import Any, Iterable

from ..config import ConfigError
from ..errors import UserError, one_line

DEFAULT_BASE_URL = "https://api.openai.com/v1"
TOP_LOGPROBS = 20  # the most the OpenAI API returns
MAX_DELAY_SECONDS = 60.0


class JudgeConfigError(ConfigError):
    """The judge cannot be set up (e.g. no API key in the environment)."""


class JudgeAPIError(UserError, RuntimeError):
    """A judge call failed for good. The message is one line and never holds the key."""

    def __init__(self, message: str, *, model: str, base_url: str, status: int | str | None = None,
                 attempts: int = 1):
        super().__init__(message)
        self.model = model
        self.base_url = base_url
        self.status = status
        self.attempts = attempts


def _missing_key_message(model: str) -> str:
    return (f"judge 'openai:{model}' needs an API key: set OPENAI_API_KEY in the environment "
            "(and OPENAI_BASE_URL for a self-hosted OpenAI-compatible server)")


_NUMBER = re.compile(r"[0-9]+")


def options_from_top_logprobs(top: Iterable[Any], options: tuple[str, ...], numeric: bool) -> dict[str, float]:
    """Map one position's top tokens to ``P(option)`` for each option (0.0 when absent).

    ``top`` holds ``(token, logprob)`` pairs or objects with ``.token`` and ``.logprob``
    (the OpenAI response's ``top_logprobs``). Each token's text is stripped of whitespace.

    ``numeric`` (0–100 ratings): a token that is an ASCII decimal integer 0..100 adds
    ``exp(logprob)`` to the option with that value ("85"; "085" counts as "85"); any
    other token ("101", "-5", "7.5", "yes") is ignored, so its mass is not counted.

    Otherwise a token counts for option ``o`` when it equals ``o``, or else when it is a
    prefix of exactly one option (the first token of a multi-token option such as
    "ARCHAIC_PERSON"); a prefix shared by several options counts for none.
    """
    probs = {o: 0.0 for o in options}
    for item in top:
        token, logprob = (item.token, item.logprob) if hasattr(item, "token") else item
        text = (token or "").strip()
        if not text or logprob is None or not math.isfinite(logprob):
            continue
        p = math.exp(logprob)
        if numeric:
            if _NUMBER.fullmatch(text) and int(text) <= 100 and str(int(text)) in probs:
                probs[str(int(text))] += p
            continue
        if text in probs:
            probs[text] += p
            continue
        starts = [o for o in options if o.startswith(text)]
        if len(starts) == 1:
            probs[starts[0]] += p
    return probs


def _retry_after_seconds(headers: Any) -> float | None:
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


class OpenAIBackend:
    """Judge backend for the OpenAI API or any OpenAI-compatible server. Its calls are
    ``paid``: a damaged stored verdict is an error naming the file, never a second call.

    ``api_key``/``base_url`` default to ``OPENAI_API_KEY``/``OPENAI_BASE_URL``, then to
    the OpenAI API. ``concurrency`` is how many threads ``judge_frame`` may run at once;
    the client is shared and thread-safe. Failed calls are retried ``max_retries`` times
    (``backoff_seconds * 2**attempt`` plus jitter, or the server's ``Retry-After``,
    at most 60 s each); ``timeout`` is per request, in seconds.
    """

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 8, max_retries: int = 6, backoff_seconds: float = 1.0,
                 timeout: float = 60):
        import openai  # a hard dependency, imported here so `import weirdgen` stays light

        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise JudgeConfigError(_missing_key_message(model))
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.concurrency = max(1, int(concurrency))
        self.paid = True  # every call costs money (a self-hosted server may not charge, but cannot be told apart)
        self.max_retries = max(0, int(max_retries))
        self.backoff_seconds = float(backoff_seconds)
        self.timeout = timeout
        self.fingerprint = f"openai:{model}@{self.base_url}"
        self._openai = openai
        self._client = openai.OpenAI(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=timeout)
        self._secret = api_key  # only to scrub it from server messages; never printed
        self._sleep = time.sleep  # tests replace it to record the delays

    @classmethod
    def from_env(cls, model: str, **kwargs: Any) -> "OpenAIBackend":
        """Key from ``OPENAI_API_KEY``, base URL from ``OPENAI_BASE_URL`` (optional)."""
        api_key = os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise JudgeConfigError(_missing_key_message(model))
        return cls(model, base_url=os.environ.get("OPENAI_BASE_URL") or None, api_key=api_key, **kwargs)

    def __repr__(self) -> str:  # no key here either
        return f"OpenAIBackend({self.model!r}, base_url={self.base_url!r}, concurrency={self.concurrency})"

    # ------------------------------------------------------------------ the calls

    def option_probs(self, prompt: str, options: tuple[str, ...], numeric: bool) -> dict[str, float]:
        """P(option) for each option, read from the first output token's top 20 logprobs."""
        response = self._call(max_tokens=1, prompt=prompt, logprobs=True, top_logprobs=TOP_LOGPROBS)
        choice = response.choices[0] if response.choices else None
        if choice is None or choice.logprobs is None or choice.logprobs.content is None:
            raise JudgeAPIError(f"judge 'openai:{self.model}' at {self.base_url} returned no logprobs; "
                                "this judge needs a model and server that support logprobs/top_logprobs",
                                model=self.model, base_url=self.base_url)
        if not choice.logprobs.content:  # the model ended at once: no mass on any option
            return {o: 0.0 for o in options}
        return options_from_top_logprobs(choice.logprobs.content[0].top_logprobs or [], options, numeric)

    def complete(self, prompt: str, max_tokens: int) -> str:
        """The judge's answer text at temperature 0."""
        response = self._call(max_tokens=max_tokens, prompt=prompt)
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""

    def estimate_cost(self, prompts: list[str], max_output_tokens: int) -> dict:
        """A dry run's numbers: calls, approximate prompt tokens (characters / 4, a rough
        rule for English text, not a tokenizer count) and the most output tokens billed."""
        return {"backend": self.fingerprint, "calls": len(prompts),
                "prompt_tokens_approx": sum(len(p) for p in prompts) // 4,
                "max_output_tokens_per_call": max_output_tokens,
                "max_output_tokens_total": max_output_tokens * len(prompts)}

    # ------------------------------------------------------------------ retries

    def _delay(self, attempt: int, headers: Any) -> float:
        asked = _retry_after_seconds(headers)
        if asked is not None:
            return min(MAX_DELAY_SECONDS, asked)
        base = self.backoff_seconds * 2**attempt
        return min(MAX_DELAY_SECONDS, base + random.uniform(0, 0.1 * base))

    def _scrub(self, text: str) -> str:
        text = str(text).replace(self._secret, "***")
        return re.sub(r"\bsk-[A-Za-z0-9_*.\-]+", "sk-***", text)  # OpenAI echoes masked key fragments

    def _call(self, *, max_tokens: int, prompt: str, **extra: Any):
        oa = self._openai
        where = f"judge 'openai:{self.model}' at {self.base_url}"
        attempts = 0
        while True:
            attempts += 1
            try:
                return self._client.chat.completions.create(
                    model=self.model, messages=[{"role": "user", "content": prompt}],
                    temperature=0, max_tokens=max_tokens, **extra)
            except (oa.AuthenticationError, oa.PermissionDeniedError) as e:
                status = e.status_code
                # `from None`: the client's own message may echo (part of) the key.
                raise JudgeAPIError(f"OPENAI_API_KEY was rejected by {self.base_url} (HTTP {status}); check the key",
                                    model=self.model, base_url=self.base_url, status=status,
                                    attempts=attempts) from None
            except oa.APIStatusError as e:
                status, headers, detail = e.status_code, e.response.headers, getattr(e, "message", "")
                if not (status in (408, 429) or status >= 500):
                    raise JudgeAPIError(f"{where}: HTTP {status}: {one_line(self._scrub(detail), 200)}",
                                        model=self.model, base_url=self.base_url, status=status,
                                        attempts=attempts) from None
            except oa.APITimeoutError:  # before APIConnectionError: it is a subclass
                status, headers, detail = "timeout", None, f"no answer within {self.timeout} s"
            except oa.APIConnectionError as e:
                status, headers, detail = "connection error", None, str(e)
            if attempts > self.max_retries:
                shown = f"HTTP {status}" if isinstance(status, int) else status
                raise JudgeAPIError(f"{where}: {shown} after {attempts} attempts "
                                    f"(max_retries={self.max_retries}): {one_line(self._scrub(detail), 200)}",
                                    model=self.model, base_url=self.base_url, status=status,
                                    attempts=attempts) from None
            self._sleep(self._delay(attempts - 1, headers))
