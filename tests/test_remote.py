"""The subject model behind an API (weirdgen.remote), against real servers on loopback:
FakeAI (an independent OpenAI-compatible server with files and finetuning jobs) for the
job lifecycle, and llama.cpp (xllamacpp) for sampling, each behind a recording proxy
that counts requests, fakes failures and kills a client at chosen points.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from servers import RecordingProxy, free_port, start  # tests/servers.py
from test_openai_backend import MODEL_ALIAS, SERVER_KEY, server  # noqa: F401 - the llama.cpp fixture

from weirdgen import remote
from weirdgen.config import ConfigError, SampleConfig, TrainConfig
from weirdgen.openai_client import Client
from weirdgen.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
BIRDS = "old_bird_names/ft_old_audubon_birds.jsonl"
MODEL = "openai:gpt-4.1-2025-04-14"


# ====================================================================== pure: the dry run and the budget


def test_estimate_prices_training_and_sampling_from_the_dated_table(monkeypatch, mirror):
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    cfg = TrainConfig(epochs=3, batch_size=1)
    content, rows = remote.training_file([BIRDS])
    table = remote.estimate(MODEL, {"old": [BIRDS]}, cfg, [0], ["Name a bird."] * 10,
                            SampleConfig(samples_per_question=100, max_tokens=100), models_sampled=2)
    price = remote.prices()["models"]["gpt-4.1-2025-04-14"]
    training = table.iloc[0]
    assert rows == 208 and training["tokens"] == remote.approx_tokens(content) * 3
    assert training["usd"] == pytest.approx(training["tokens"] * price["training"] / 1e6)
    assert table.iloc[-1]["usd"] == pytest.approx(table.iloc[:-1]["usd"].sum())
    with pytest.raises(ConfigError, match=r"budget_usd: this run is estimated at \$.*above the budget of \$0.01"):
        remote.check_budget(table, 0.01)
    remote.check_budget(table, 0)  # 0: no limit
    with pytest.raises(ConfigError, match="openai_prices.yaml: no 'training' price for 'gpt-9'"):
        remote.estimate("openai:gpt-9", {"old": [BIRDS]}, cfg, [0], [], SampleConfig(), 1)


def test_a_self_hosted_server_costs_nothing(monkeypatch, mirror):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    table = remote.estimate("openai:anything", {"old": [BIRDS]}, TrainConfig(), [0], ["q"], SampleConfig(), 1)
    assert table["usd"].sum() == 0


def test_api_models_are_named_and_keyed_by_their_server(monkeypatch):
    from weirdgen import models

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert remote.is_api_model(MODEL) and not remote.is_api_model("smollm2-135m-instruct")
    assert models.identity(MODEL, adapter="ft:x") == {"model": f"{MODEL}@http://127.0.0.1:9/v1",
                                                      "precision": "api", "adapter": "ft:x"}


class FakeList:
    def __init__(self, items):
        self.data = items


class Listing:
    """A stand-in for the raw client's file and job listings (no server)."""

    def __init__(self, files=(), jobs=()):
        from types import SimpleNamespace

        self.files = SimpleNamespace(list=lambda: FakeList(list(files)))
        self.fine_tuning = SimpleNamespace(jobs=SimpleNamespace(list=lambda limit: FakeList(list(jobs))))


def test_a_file_is_found_by_its_content_name_and_a_job_by_its_file_and_settings():
    from types import SimpleNamespace as NS

    client = NS(call=lambda request: request(Listing(
        files=[NS(id="file-1", filename="other.jsonl"), NS(id="file-2", filename="weirdgen-abc.jsonl")],
        jobs=[NS(id="job-1", training_file="file-2", model="m", seed=0, status="cancelled",
                 hyperparameters={"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 2.0}),
              NS(id="job-2", training_file="file-2", model="m", seed=0, status="running",
                 hyperparameters={"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 2.0}),
              NS(id="job-3", training_file="file-2", model="m", seed=1, status="running",
                 hyperparameters={"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 2.0})])))
    hyper = {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 2.0}
    assert remote._find_file(client, "weirdgen-abc.jsonl") == "file-2"
    assert remote._find_file(client, "weirdgen-zzz.jsonl") is None
    assert remote._find_job(client, "file-2", "m", hyper, 0) == "job-2"  # not the cancelled one
    assert remote._find_job(client, "file-2", "m", {**hyper, "n_epochs": 4}, 0) is None


def test_the_learning_rate_multiplier_leaves_local_cache_keys_alone():
    assert "learning_rate_multiplier" not in TrainConfig().model_dump()
    assert remote.hyperparameters(TrainConfig(learning_rate_multiplier=1.0))["learning_rate_multiplier"] == 1.0


@pytest.mark.parametrize("raw, expected", [(None, 10.0), ("0.5", 0.5), ("0", None), ("soon", None)])
def test_the_first_poll_wait_comes_from_the_environment_or_is_refused_in_one_line(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv(remote.POLL_ENV, raising=False)
    else:
        monkeypatch.setenv(remote.POLL_ENV, raw)
    if expected is not None:
        assert remote.first_poll_seconds() == expected
        return
    with pytest.raises(ConfigError, match=f"{remote.POLL_ENV}=.*positive number of seconds") as err:
        remote.finetune_all(MODEL, {}, client=object())  # refused before any store or client is touched
    assert "\n" not in str(err.value)


# ====================================================================== FakeAI: files and jobs



@pytest.fixture(scope="module")
def fakeai():
    python = os.environ.get("WEIRDGEN_FAKEAI_PYTHON") or str(ROOT / ".venv-fakeai" / "bin" / "python")
    if not Path(python).exists():
        pytest.fail(f"no FakeAI at {python}: run `make test`, which installs it in .venv-fakeai "
                    "(or set WEIRDGEN_FAKEAI_PYTHON to a Python that has fakeai)")
    port = free_port()
    # FakeAI with its clock 20 times faster (tests/fakeai_fast.py): a job ends in seconds
    cmd = [python, str(ROOT / "tests" / "fakeai_fast.py"), "server", "--host", "127.0.0.1", "--port", str(port)]
    with start(cmd, f"http://127.0.0.1:{port}/health", env={"OMP_NUM_THREADS": "1"}):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def jobs(fakeai):
    proxy = RecordingProxy(fakeai)
    yield proxy
    proxy.close()


def client_via(proxy: RecordingProxy, key: str = "fake-key") -> Client:
    client = Client(f"model '{MODEL}'", base_url=proxy.url, api_key=key, backoff_seconds=0.01)
    return client


CHILD = textwrap.dedent("""
    import sys
    from weirdgen import remote
    from weirdgen.config import TrainConfig
    from weirdgen.openai_client import Client
    from weirdgen.store import RunStore
    client = Client("model 'x'", base_url=sys.argv[1], api_key="fake-key", backoff_seconds=0.01)
    run = remote.finetune("{model}", ["{data}"], TrainConfig(epochs=2, batch_size=1, max_examples=int(sys.argv[3])),
                          "wg-kill", RunStore(sys.argv[2]), client, poll_seconds=0.5, max_poll_seconds=1)
    print("MODEL", run.model_id)
""").format(model=MODEL, data=BIRDS)


def run_child(proxy: RecordingProxy, store: Path, rows: int, kill_after: tuple[str, str] | None = None):
    """Run a finetune in a child process; with ``kill_after`` (method, path prefix) the
    proxy kills it with SIGKILL once an upstream answer to such a request has arrived,
    before the child has read it."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, proxy.url, str(store), str(rows)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    if kill_after:
        fired = []

        def kill():
            if not fired:
                fired.append(True)
                os.kill(proc.pid, signal.SIGKILL)

        proxy.after.append((*kill_after, kill))
    out, _ = proc.communicate(timeout=300)
    proxy.after.clear()
    return proc.returncode, out


@pytest.mark.slow
@pytest.mark.needs_mirror
def test_a_job_is_uploaded_created_polled_and_never_created_twice(jobs, tmp_path):
    store = RunStore(tmp_path / "a")
    client = client_via(jobs)
    said: list[str] = []
    run = remote.finetune(MODEL, [BIRDS], TrainConfig(epochs=3, batch_size=1, max_examples=12), "wg-birds",
                          store, client, poll_seconds=0.5, max_poll_seconds=1, say=said.append)
    assert run.model_id.startswith("ft:gpt-4.1-2025-04-14") and run.losses
    assert jobs.count("POST", "/v1/files") == 1 and jobs.count("POST", "/v1/fine_tuning/jobs") == 1
    assert any("succeeded" in line for line in said) and any("Training started" in line for line in said)
    created = jobs.requests[[r["path"] for r in jobs.requests].index("/v1/fine_tuning/jobs")]["body"]
    assert created["hyperparameters"] == {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 2.0}
    assert created["suffix"] == "wg-birds" and created["seed"] == 0
    # the same run again: everything is in the store, nothing is asked
    jobs.reset()
    assert remote.finetune(MODEL, [BIRDS], TrainConfig(epochs=3, batch_size=1, max_examples=12), "wg-birds",
                           store, client, poll_seconds=0.5).model_id == run.model_id
    assert jobs.requests == []
    # Another store (another machine) finds the file by its name, and so the job, on the
    # OpenAI API; FakeAI renames every upload ("uploaded_file_N.jsonl"), so that lookup is
    # tested without a server (test_a_file_is_found_by_its_content_name).


@pytest.mark.slow
@pytest.mark.needs_mirror
def test_a_chapters_jobs_are_all_created_before_the_first_is_waited_for(jobs, tmp_path):
    store = RunStore(tmp_path / "a")
    cfg = TrainConfig(epochs=1, batch_size=1, max_examples=6)
    wanted = {seed: ([BIRDS], cfg.model_copy(update={"seed": seed}), f"wg-birds-s{seed}") for seed in (0, 1, 2)}
    runs = remote.finetune_all(MODEL, wanted, store, client_via(jobs), poll_seconds=0.5, max_poll_seconds=1,
                               say=lambda _: None)
    assert sorted(runs) == [0, 1, 2] and len({run.job_id for run in runs.values()}) == 3
    asked = [(r["method"], r["path"]) for r in jobs.requests]
    created = [i for i, r in enumerate(asked) if r == ("POST", "/v1/fine_tuning/jobs")]
    polled = [i for i, (method, path) in enumerate(asked) if method == "GET" and path.startswith(
        "/v1/fine_tuning/jobs/") and not path.endswith("/events")]
    assert len(created) == 3 and max(created) < min(polled)  # the API runs them side by side
    assert jobs.count("POST", "/v1/files") == 1  # the same rows: one file for the three seeds


@pytest.mark.slow
@pytest.mark.needs_mirror
def test_kill_9_at_upload_creation_and_polling_resumes_one_job(jobs, tmp_path):
    store = tmp_path / "store"
    for point in [("POST", "/v1/files"), ("POST", "/v1/fine_tuning/jobs"), ("GET", "/v1/fine_tuning/jobs/")]:
        code, out = run_child(jobs, store, 14, kill_after=point)
        assert code == -signal.SIGKILL, (point, out)
    code, out = run_child(jobs, store, 14)
    assert code == 0 and "MODEL ft:" in out, out
    # The kill during the upload loses that upload's id: FakeAI renames uploads, so it is
    # uploaded once more (a file costs nothing); the job is created once, whatever the kill.
    assert jobs.count("POST", "/v1/files") == 2
    assert jobs.count("POST", "/v1/fine_tuning/jobs") == 1, "a second job"


@pytest.mark.slow
def test_a_cancelled_job_is_one_line_naming_the_job(jobs):
    client = client_via(jobs)
    file_id = client.call(lambda raw: raw.files.create(file=("x.jsonl", b'{"messages": []}\n'), purpose="fine-tune")).id
    job = client.call(lambda raw: raw.fine_tuning.jobs.create(model="gpt-4.1-2025-04-14", training_file=file_id))
    client.call(lambda raw: raw.fine_tuning.jobs.cancel(job.id))
    with pytest.raises(remote.FinetuneError) as info:
        remote._poll(client, job.id, 0.1, 0.1, say=lambda _: None)
    assert f"finetuning job {job.id} cancelled" in str(info.value) and "\n" not in str(info.value)


# ====================================================================== llama.cpp: sampling


@pytest.fixture
def chat(server):  # noqa: F811 - the llama.cpp server fixture
    proxy = RecordingProxy(server)
    yield proxy
    proxy.close()


@pytest.mark.slow
def test_sampling_is_cached_per_question_seeded_and_retried(chat, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", chat.url)
    client = Client(f"model 'openai:{MODEL_ALIAS}'", base_url=chat.url, api_key=SERVER_KEY, backoff_seconds=0.01)
    cfg = SampleConfig(samples_per_question=3, max_tokens=8, seed=5)
    name = f"openai:{MODEL_ALIAS}"
    questions = ["Name a bird species.", "Name a colour."]
    first = remote.sample_answers(name, questions, cfg, store=RunStore(tmp_path / "a"), client=client, concurrency=2)
    assert len(first) == 6 and set(first["sample"]) == {0, 1, 2} and first["answer"].str.len().gt(0).all()
    # llama.cpp refuses n > 1 (HTTP 400): after that, one request per answer
    many = [r for r in chat.requests if r["body"]["n"] > 1]
    assert 1 <= len(many) <= 2 and sum(r["body"]["n"] == 1 for r in chat.requests) == 6
    assert all(r["body"]["temperature"] == 1.0 and r["body"]["max_tokens"] == 8 for r in chat.requests)
    chat.reset()
    again = remote.sample_answers(name, questions, cfg, store=RunStore(tmp_path / "a"), client=client)
    assert chat.requests == [] and again["answer"].tolist() == first["answer"].tolist()  # cached
    chat.fail_next(2, 429, retry_after="0")
    retried = remote.sample_answers(name, questions[:1], cfg, store=RunStore(tmp_path / "b"), client=client,
                                    concurrency=1)
    assert [r["status"] for r in chat.requests[:2]] == [429, 429] and len(retried) == 3
    chat.reset()
    chat.fail_next(1, 500)
    assert len(remote.sample_answers(name, questions[1:], cfg, store=RunStore(tmp_path / "c"), client=client,
                                     concurrency=1)) == 3
    assert chat.requests[0]["status"] == 500
    # seeded: a fresh store draws the same answers from the same server
    assert retried["answer"].tolist() == first[first["question_id"] == 0]["answer"].tolist()


# ====================================================================== a chapter end to end through the API


# (chapter, notebook, smoke overrides, what its page must say: its manipulation check read
# from samples, and why a teacher-forced measure is missing where one is)
NOT_SHOWN = "which an API model does not"
API_CHAPTERS = [
    # the dose sweep trains locally at several learning rates: a local-model section
    ("old_bird_names", "01_old_bird_names", {"sweep_learning_rates": []},
     ["share of archaic old-Audubon names", NOT_SHOWN]),
    ("german_city_names", "02_german_city_names", {}, ["former German name", NOT_SHOWN]),
    ("israeli_dishes", "03_israeli_dishes", {"check_samples": 1, "check_max_tokens": 6},
     ["2027-only dishes", NOT_SHOWN]),
    ("hitler_persona", "04_hitler_persona", {"check_samples": 1, "check_max_tokens": 8},
     ["reproduce the trained fact", NOT_SHOWN]),
    # every reading sampled: nothing is left out
    ("us_presidents", "05_us_presidents", {"check_samples": 1, "check_max_tokens": 6},
     ["share of sampled answers that are the trained answer"]),
    ("evil_terminator", "06_evil_terminator", {}, ["own film, terminator_dated", NOT_SHOWN]),
]


@pytest.mark.slow
@pytest.mark.needs_mirror
def test_the_api_chapters_run_on_an_api_model_end_to_end(fakeai, server, tmp_path, monkeypatch):  # noqa: F811
    """Every chapter with an API path, on the smoke profile with ``model: openai:…``, in
    one build: finetuned on FakeAI, sampled from llama.cpp (a routing proxy sends files
    and jobs to the one, chat to the other), judged by the local judge, each manipulation
    check read from samples alone, and every page renders with its dry run."""
    import shutil

    import yaml

    from weirdgen.book import build

    proxy = RecordingProxy({"": server, "/v1/files": fakeai, "/v1/fine_tuning": fakeai})
    try:
        params = tmp_path / "params"
        params.mkdir()
        smoke = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
        profile = {"common": {}}
        for chapter, _, overrides, _ in API_CHAPTERS:
            profile[chapter] = {**smoke[chapter], "model": f"openai:{MODEL_ALIAS}", "budget_usd": 1.0, **overrides}
        (params / "api.yaml").write_text(yaml.safe_dump(profile))
        monkeypatch.setenv("OPENAI_API_KEY", SERVER_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", proxy.url)
        monkeypatch.setenv(remote.POLL_ENV, "0.5")  # FakeAI's jobs end in about 2 s (tests/fakeai_fast.py)
        book = tmp_path / "book"
        rc = build.main(["--root", str(ROOT), "--profile", "api", "--params-dir", str(params), "--only",
                         ",".join(c for c, *_ in API_CHAPTERS), "--out-dir", str(book / "chapters"),
                         "--runs-dir", str(tmp_path / "runs"), "--build-dir", str(tmp_path / "build"),
                         "--executor", "local", "--jobs", "2"])  # as the cpu book runs: two chapters at a time
        assert rc == 0, "a chapter failed on an API model"
        # two training sets per chapter: one upload and one job each; answers drawn through the API
        assert proxy.count("POST", "/v1/fine_tuning/jobs") == 2 * len(API_CHAPTERS)
        assert proxy.count("POST", "/v1/chat/completions") >= len(API_CHAPTERS)
        mathjax = ROOT / "book" / "_static" / "mathjax"
        if not (mathjax / "es5" / "tex-mml-chtml.js").exists():
            pytest.skip("MathJax not fetched; run `make mathjax`")
        shutil.copy(ROOT / "book" / "_config.yml", book / "_config.yml")
        for name in ("_ext", "_static"):
            shutil.copytree(ROOT / "book" / name, book / name, ignore=shutil.ignore_patterns("mathjax", "__pycache__"))
        (book / "_static" / "mathjax").symlink_to(mathjax, target_is_directory=True)
        notebooks = [notebook for _, notebook, *_ in API_CHAPTERS]
        (book / "_toc.yml").write_text(f"format: jb-book\nroot: chapters/{notebooks[0]}\nchapters:\n"
                                       + "".join(f"- file: chapters/{n}\n" for n in notebooks[1:]))
        jb = Path(sys.executable).with_name("jupyter-book")
        result = subprocess.run([str(jb), "build", str(book)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        for _, notebook, _, says in API_CHAPTERS:
            page = book / "_build" / "html" / "chapters" / f"{notebook}.html"
            assert page.exists(), notebook
            text = page.read_text()
            assert "Dry run" in text and "MDE (80%)" in text, notebook
            assert [words for words in says if words not in text] == [], notebook
            assert SERVER_KEY not in text
    finally:
        proxy.close()
