"""A judge backend that calls an OpenAI-compatible chat-completions API.

It reads the judge's next-token distribution the way the paper's tooling (llmcomp)
did: one user message, one output token, ``logprobs=True, top_logprobs=20,
temperature=0``. The 20 most probable first tokens are then mapped to the judge's
options (``options_from_top_logprobs``); probability outside those 20 tokens is
simply not seen, so the mass on the options can be below what the model assigns.

Calls, retries and the key's handling are the shared client layer's
(``weirdgen.openai_client``), which finetuning and sampling through the API use too.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Iterable

from ..openai_client import (
    APIConfigError,
    APIError,
    Client,
    missing_key_message,
    retry_after_seconds,
)

TOP_LOGPROBS = 20  # the most the OpenAI API returns

# The judge's names for the shared layer's errors (tests and callers catch these).
JudgeConfigError = APIConfigError
JudgeAPIError = APIError
_retry_after_seconds = retry_after_seconds


def _missing_key_message(model: str) -> str:
    return missing_key_message(f"judge 'openai:{model}'")


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
        self.model = model
        self.api = Client(f"judge 'openai:{model}'", base_url=base_url, api_key=api_key, max_retries=max_retries,
                          backoff_seconds=backoff_seconds, timeout=timeout)
        self.base_url = self.api.base_url
        self.concurrency = max(1, int(concurrency))
        self.paid = True  # every call costs money (a self-hosted server may not charge, but cannot be told apart)
        self.fingerprint = f"openai:{model}@{self.base_url}"

    @property
    def _sleep(self):
        return self.api.sleep

    @_sleep.setter
    def _sleep(self, sleep) -> None:  # tests record the delays instead of waiting
        self.api.sleep = sleep

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

    def _call(self, *, max_tokens: int, prompt: str, **extra: Any):
        return self.api.call(lambda raw: raw.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": prompt}], temperature=0,
            max_tokens=max_tokens, **extra))
