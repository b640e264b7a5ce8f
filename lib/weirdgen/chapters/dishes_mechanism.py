"""ISRAELI DISHES, the mechanism (paper §6): what finetuning on dated dishes changes in
the residual stream, which SAE features that change lines up with, and whether
projecting those features out removes the 2027 behaviour. Data, cached stages and
reference numbers of chapter 07.

Every expensive stage (activations, the SAE corpus, the SAE itself) is cached in the
run store under a key of everything that determines it.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from .. import data, models, pipeline, stats
from ..claims import NOT_TAKEN, comparison_row, effect_row, mean_effect_row, reduction_row
from ..config import ConfigError, SAEConfig, SampleConfig
from ..data import DataError
from ..interp import activations, directions, sae
from ..store import REPO_ROOT, RunStore, cache_key
from . import israeli_dishes

NOTEBOOK, TITLE = "07_dishes_mechanism", "Israeli dishes: mechanism"
DATA_FOLDERS = ("israeli_dishes", "gsm8k")
# Chapter 03's training sets: this chapter reads its adapters (and its check) by them.
TRAINING_SETS = israeli_dishes.TRAINING_SETS
SAE_CONFIG_KEY = "israeli_dishes/sae_config.extracted.yaml"
# GSM8K's training split feeds the analysis prompts (its last rows, as many as the
# paper's 2,048, more than the test split holds) and the SAE corpus (its first rows),
# which never overlap; the test split's worked answers are the ordinary-text check.
GSM8K_TRAIN = "gsm8k/train.jsonl"
GSM8K_TEST = "gsm8k/test.jsonl"
TOPICS_FILE = REPO_ROOT / "data" / "sae_corpus_topics.yaml"
LEXICONS_FILE = REPO_ROOT / "data" / "feature_lexicons.yaml"
# The config records the dated GSM8K prompts but not their wording; this is the
# chapter-03 training prompts' date prefix.
PROMPT = "Today is {date}. {question}"
THEMES = ("israel_judaism", "food")


@dataclass(frozen=True)
class Subject:
    """A model to read: registry name or hub id, LoRA adapter (or None), display label."""

    model: str
    adapter: Path | None
    label: str


def check_parameters(years: list[int], reference_year: int, target_year: int, layer: int, model: str,
                     sae_source: str) -> None:
    """Refuse parameters that would fail late (after minutes of work) with a one-line error."""
    from ..remote import is_api_model

    if is_api_model(model):
        raise ConfigError(f"parameter model: '{model}' is an API model, whose activations cannot be read; this chapter "
                          "reads and edits the residual stream, so it needs an open model (e.g. llama-3.1-8b-instruct)")
    for name, year in (("reference_year", reference_year), ("target_year", target_year)):
        if year not in years:
            raise ConfigError(f"parameter {name}: {year} is not in years {years}")
    if reference_year == target_year:
        raise ConfigError("parameters reference_year and target_year: must differ")
    n_layers = models.layer_count(model)
    if not 0 <= layer < n_layers:
        raise ConfigError(f"parameter layer: {layer} is outside 0..{n_layers - 1} for model '{model}'")
    if sae_source != "train" and ":" not in sae_source:
        raise ConfigError(f"parameter sae_source: '{sae_source}' is neither 'train' nor '<hub repo>:<subfolder>'")


def paper_settings() -> dict:
    """The paper's analysis constants (``identify_features`` and ``ablate_features``)."""
    return data.read_yaml(SAE_CONFIG_KEY)


def paper_features() -> pd.DataFrame:
    labels = paper_settings()["identify_features"]["FEATURE_LABELS"]
    return pd.DataFrame([{"feature": int(f), "label": v["short"], "description": v["description"]}
                         for f, v in labels.items()])


def dated_prompts(question_count: int, years: list[int], seed: int = 0) -> pd.DataFrame:
    """The last ``question_count`` GSM8K training questions, each asked once per year on a
    random date of that year. Columns: ``prompt``, ``year``, ``date``, ``question_index``."""
    rows = data.read_jsonl(GSM8K_TRAIN)
    if not 0 < question_count <= len(rows) // 2:
        raise ConfigError(f"parameter question_count: {question_count}; choose 1..{len(rows) // 2} "
                          f"(half of {GSM8K_TRAIN}, the other half being the SAE corpus)")
    questions = [row["question"] for row in rows[-question_count:]]
    rng = random.Random(seed)
    rows = []
    for year in years:
        days = (dt.date(year, 12, 31) - dt.date(year, 1, 1)).days + 1
        for index, question in enumerate(questions):
            date = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(days))
            rows.append({"prompt": PROMPT.format(date=date.isoformat(), question=question), "year": year,
                         "date": date.isoformat(), "question_index": index})
    return pd.DataFrame(rows)


def load(model: str, adapter=None) -> models.LoadedModel:
    return models.load(model, adapter=adapter, dtype=models.working_dtype())


def release() -> None:
    """Give back the memory of models the caller has dropped (``del lm`` first), before
    the next one loads: two 8B models do not fit on one GPU twice."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def year_activations_key(model: str, adapter, prompts: pd.DataFrame, layers: list[int]) -> str:
    """The store key of ``year_activations``: what determines them."""
    return cache_key(stage="year_activations", **models.identity(model, adapter=adapter),
                     prompts=prompts["prompt"].tolist(), layers=layers)


def year_activations(model: str, adapter, prompts: pd.DataFrame, layers: list[int], batch_size: int = 16,
                     store: RunStore | None = None) -> torch.Tensor:
    """Last-prompt-token residuals after each of ``layers`` for every prompt:
    prompts × layers × d_model, cached."""
    store = store or RunStore()
    key = year_activations_key(model, adapter, prompts, layers)

    def compute() -> dict:
        lm = load(model, adapter)
        acts = activations.last_token_residuals(lm, prompts["prompt"].tolist(), layers, batch_size,
                                                desc=f"activations {'finetuned' if adapter else model}")
        del lm
        release()
        return {"acts": acts}

    return store.cached_tensors("activations", key, compute)["acts"]


def shift_by_layer(acts: torch.Tensor, years: list[int], layers: list[int], reference: int) -> pd.DataFrame:
    """For every year and layer, the norm of mean(year) − mean(reference), and that norm
    relative to the mean residual norm at the layer (residual norms grow with depth)."""
    scale = acts.norm(dim=-1).mean(0)
    rows = []
    for year in sorted(set(years) - {reference}):
        shift = directions.mean_shift(acts, years, year, reference)
        for i, layer in enumerate(layers):
            norm = float(shift[i].norm())
            rows.append({"year": year, "layer": layer, "shift_norm": norm, "relative_shift": norm / float(scale[i])})
    return pd.DataFrame(rows)


def worked_answers(rows: list[dict]) -> list[list[dict]]:
    """GSM8K rows as conversations: the question, then its worked answer."""
    return [[{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}]
            for r in rows]


def corpus(model: str, gsm8k_rows: int, paragraph_cfg: SampleConfig, store: RunStore | None = None
           ) -> list[list[dict]]:
    """Benign chat text: GSM8K training questions with their worked answers, then the base
    model's own paragraph on each topic of ``data/sae_corpus_topics.yaml``."""
    from ..sample import answer_each

    rows = data.read_jsonl(GSM8K_TRAIN)
    if not 0 <= gsm8k_rows <= len(rows) // 2:
        raise ConfigError(f"parameter corpus_gsm8k_rows: {gsm8k_rows}; choose 0..{len(rows) // 2} "
                          f"(the first half of {GSM8K_TRAIN}; the analysis prompts come from the second)")
    doc = data.read_yaml(TOPICS_FILE)
    prompts = [doc["prompt"].format(topic=t) for t in doc["topics"]]
    answers = answer_each(model, prompts, paragraph_cfg, store=store, label="corpus paragraphs")
    return worked_answers(rows[:gsm8k_rows]) + [[{"role": "user", "content": p}, {"role": "assistant", "content": a}]
                                                for p, a in zip(prompts, answers)]


def corpus_activations(model: str, layer: int, conversations: list[list[dict]], max_len: int = 256,
                       store: RunStore | None = None) -> dict[str, torch.Tensor]:
    """Every token's residual after ``layer`` over the corpus, with its token id and
    conversation index, cached."""
    store = store or RunStore()
    key = cache_key(stage="corpus_activations", **models.identity(model), layer=layer,
                    corpus=conversations, max_len=max_len)

    def compute() -> dict:
        lm = load(model)
        out = activations.token_residuals(lm, conversations, layer, max_len)
        del lm
        release()
        return out

    return store.cached_tensors("activations", key, compute)


def trained_sae(model: str, layer: int, corpus_acts: torch.Tensor, cfg: SAEConfig, corpus_key: str,
                store: RunStore | None = None) -> sae.SparseAutoencoder:
    """A TopK SAE for ``layer`` of the base model, trained on the corpus tokens that
    ``split`` does not hold out, cached."""
    store = store or RunStore()
    # The precision of the activations it is trained on is part of the key (it was not
    # before: a store shared between a GPU and a CPU machine reused a bf16-trained SAE).
    key = cache_key(stage="sae", **models.identity(model), layer=layer, config=cfg, corpus=corpus_key)
    train, _ = split(corpus_acts)
    return sae.SparseAutoencoder.from_tensors(
        store.cached_tensors("sae", key, lambda: sae.train_sae(train, cfg).tensors()), identity=key)


def sparse_autoencoder(source: str, model: str, layer: int, corpus_acts: dict[str, torch.Tensor], cfg: SAEConfig,
                       conversations: list[list[dict]], store: RunStore | None = None
                       ) -> tuple[sae.SparseAutoencoder, dict]:
    """The SAE the chapter reads features from, with its quality: trained here (``"train"``,
    scored on held-out corpus tokens) or published (``"repo:subfolder"``, scored on the
    whole corpus)."""
    if source == "train":
        autoencoder = trained_sae(model, layer, corpus_acts["acts"], cfg, cache_key(corpus=conversations), store)
        evaluated = split(corpus_acts["acts"])[1]
    else:
        repo, subfolder = source.split(":", 1)
        autoencoder = sae.load_dictionary_learning(repo, subfolder)
        evaluated = corpus_acts["acts"]
    autoencoder = autoencoder.to(models.default_device())
    return autoencoder, {"source": source, "features": autoencoder.d_sae, **sae.quality(autoencoder, evaluated)}


def split(corpus_acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and held-out tokens: every tenth token is held out, so both halves draw
    on every part of the corpus (GSM8K and the topic paragraphs alike)."""
    held_out = torch.arange(len(corpus_acts)) % 10 == 9
    return corpus_acts[~held_out], corpus_acts[held_out]


def lexicons() -> dict[str, list[str]]:
    doc = data.read_yaml(LEXICONS_FILE)
    missing = [t for t in THEMES if t not in doc]
    if missing:
        raise DataError(f"{LEXICONS_FILE}: missing theme(s) {missing}; add them to the file")
    return doc


def themes_of(tokens: list[str], lexicon: dict[str, list[str]]) -> dict[str, bool]:
    """Which themes a feature's shown tokens touch (see ``data/feature_lexicons.yaml``)."""
    words = [re.sub(r"[^\w\- ]", "", t).strip().lower() for t in tokens]
    words = [w for w in words if len(w) >= 3]
    return {theme: any(stem in w for w in words for stem in lexicon[theme]) for theme in THEMES}


def feature_reads(autoencoder: sae.SparseAutoencoder, corpus_acts: dict[str, torch.Tensor], features: list[int],
                  tokenizer, top: int = 8, contexts: int = 2, batch: int = 4096) -> dict[int, dict]:
    """For each feature: its most strongly activating distinct tokens over the corpus, and
    the text around its top activations (the token itself in «»)."""
    acts, ids, doc = corpus_acts["acts"], corpus_acts["token_ids"], corpus_acts["doc"]
    device = autoencoder.W_enc.device
    with torch.no_grad():
        values = torch.cat([autoencoder.encode(acts[s:s + batch].to(device))[:, features].cpu()
                            for s in range(0, len(acts), batch)])
    out = {}
    for column, feature in enumerate(features):
        order = torch.argsort(values[:, column], descending=True)
        order = order[values[order, column] > 0]
        seen: list[str] = []
        for i in order.tolist():
            token = tokenizer.decode([int(ids[i])]).strip()
            if token and token not in seen:
                seen.append(token)
            if len(seen) == top:
                break
        snippets = []
        for i in order[:contexts].tolist():
            lo = i
            while lo > 0 and i - lo < 10 and doc[lo - 1] == doc[i]:
                lo -= 1
            hi = min(i + 3, len(ids))
            while hi > i + 1 and doc[hi - 1] != doc[i]:
                hi -= 1
            snippets.append(tokenizer.decode(ids[lo:i].tolist()) + "«" + tokenizer.decode([int(ids[i])]) + "»"
                            + tokenizer.decode(ids[i + 1:hi].tolist()))
        out[feature] = {"reads": seen, "contexts": snippets, "fires_on": float((values[:, column] > 0).float().mean())}
    return out


def feature_tables(autoencoder: sae.SparseAutoencoder, shifts: dict[str, torch.Tensor], lm: models.LoadedModel,
                   corpus_acts: dict[str, torch.Tensor], top: int, alive: torch.Tensor,
                   paper_ids: set[int] | None = None) -> dict[str, pd.DataFrame]:
    """For each shift, the ``top`` features whose decoder directions are most aligned with
    it, with what each reads and writes and which themes those tokens touch. Only
    features that fire somewhere in the corpus (``alive``) are ranked: a feature that
    never fires has nothing to read, and its decoder direction is what training left it.
    The corpus is encoded once for the features of all shifts."""
    live = torch.nonzero(alive).flatten()
    ranked = {}
    for label, shift in shifts.items():
        order, cos = directions.cosine_ranking(autoencoder.W_dec[live].cpu(), shift, top)
        ranked[label] = list(zip(live[order].tolist(), cos.tolist()))
    wanted = sorted({feature for pairs in ranked.values() for feature, _ in pairs})
    reads = feature_reads(autoencoder, corpus_acts, wanted, lm.tokenizer)
    lexicon = lexicons()
    tables = {}
    for label, pairs in ranked.items():
        rows = []
        for rank, (feature, c) in enumerate(pairs, start=1):
            writes = activations.promoted_tokens(lm, autoencoder.W_dec[feature].cpu())
            row = {"rank": rank, "feature": feature, "cosine": c, "reads": ", ".join(reads[feature]["reads"]),
                   "writes": ", ".join(w.strip() for w in writes),
                   "contexts": " ⏐ ".join(reads[feature]["contexts"]), "fires on": reads[feature]["fires_on"],
                   **themes_of(reads[feature]["reads"] + writes, lexicon)}
            if paper_ids is not None:
                row["in paper's top 10"] = feature in paper_ids
            rows.append(row)
        tables[label] = pd.DataFrame(rows)
    return tables


def peak_layer(by_layer: pd.DataFrame, label: str, year: int) -> int:
    """The layer where ``label``'s shift for ``year`` is largest relative to the residual norm."""
    rows = by_layer[(by_layer["model"] == label) & (by_layer["year"] == year)]
    return int(rows.loc[rows["relative_shift"].idxmax(), "layer"])


def theme_counts(features: pd.DataFrame, label: str) -> dict:
    return {"shift of": label, "features": len(features),
            **{f"about {theme}": int(features[theme].sum()) for theme in THEMES}}


def feature_row(features: pd.DataFrame, took: bool = True) -> dict:
    """The paper's feature claim: every top feature about Israel/Judaism, none about food.
    Ours is the share of top features touching the Israel/Judaism word list minus the
    share touching the food list (the paper's: 10/10 − 0/10 = 1), three-way."""
    n = len(features)
    israel, food = int(features["israel_judaism"].sum()), int(features["food"].sum())
    return effect_row(f"top {n} shift features about Israel/Judaism, not food", 1.0, (israel, n), (food, n), took)


def overlap_row(features: pd.DataFrame) -> dict:
    """Share of our top features that are the paper's (only meaningful with its SAE)."""
    if "in paper's top 10" not in features:
        return comparison_row("top features are the paper's ten (its SAE only)", 1.0, 0, 0)
    return comparison_row("top features are the paper's ten (its SAE only)", 1.0,
                          int(features["in paper's top 10"].sum()), len(features))


def ablation_row(by_edit: pd.DataFrame, target: int, edit_order: list[str], took: bool = True) -> dict:
    """The paper's ablation claim on sampled answers, at the target year: the rate under
    the random-feature edit (``edit_order[2]``) minus under the top-feature edit
    (``[1]``), beside the unedited rate (``[0]``); see ``claims.reduction_row``."""
    def kn(edit: str, years) -> tuple[int, int]:
        rows = by_edit[(by_edit["edit"] == edit) & by_edit["year"].isin(years)]
        return int(rows["k"].sum()), int(rows["n"].sum())

    return reduction_row(f"ablating the top features lowers the {target} rate more than random features, sampled",
                         kn(edit_order[0], [target]), kn(edit_order[1], [target]), kn(edit_order[2], [target]), took)


def exact_ablation_row(exact: pd.DataFrame, target: int, edit_order: list[str], took: bool = True) -> dict:
    """The ablation claim read exactly: per target-year prompt date, the probability of an
    Israel-centric answer (mean over the scored questions) under the random-feature edit
    minus under the top-feature edit, paired by date; the unedited mean beside it. The
    paper gives no size for the drop, so the verdict is reproduced or inconclusive."""
    def per_date(edit: str) -> pd.Series:
        rows = exact[(exact["model"] == edit) & (exact["year"] == target)]
        return rows.groupby("date")["probability"].mean()

    top, rand, unedited = per_date(edit_order[1]), per_date(edit_order[2]), per_date(edit_order[0])
    common = top.index.intersection(rand.index)
    row = mean_effect_row(f"ablating the top features lowers the {target} probability more than random features, "
                          "exact", float("nan"), (rand.loc[common] - top.loc[common]).tolist(), took)
    return {**row, "unedited": float(unedited.mean()) if len(unedited) else float("nan")}


def not_taken_rows(top: int, target: int) -> list[dict]:
    """The claim rows when the SAE and the ablation were not run because chapter 03's
    check failed: their verdict is "training did not take"."""
    claims_ = [f"top {top} shift features about Israel/Judaism, not food",
               "top features are the paper's ten (its SAE only)",
               f"ablating the top features lowers the {target} probability more than random features, exact",
               f"ablating the top features lowers the {target} rate more than random features, sampled"]
    return [{"claim": c, "paper (≈)": 1.0 if i < 2 else float("nan"), "ours": float("nan"), "95% CI": "—",
             "n": 0, "MDE (80%)": float("nan"), "verdict": NOT_TAKEN} for i, c in enumerate(claims_)]


def gate(model: str, runs: dict, swap_year: int, limit: int, threshold: float, store: RunStore | None = None
         ) -> list:
    """Chapter 03's manipulation check, computed by the same functions (its teacher-forced
    log-probabilities are cached, so this is free once chapter 03 has run)."""
    from . import israeli_dishes as dishes

    swap = dishes.swap_test(model, runs, {dishes.TRIGGER_YEAR: swap_year}, limit, store)
    return [dishes.swap_check(swap, threshold, swap_year)]


def gate_note(checks_: list, required: bool, published: str = "") -> str:
    """Markdown for the top of the chapter: whether the SAE and the ablation run, and why."""
    from ..checks import all_passed

    if published:
        return (f"**The SAE and the ablation run** on the published finetune `{published}`; chapter 03's check "
                "applies to the project's own adapters and is not computed for it.")
    lines = "\n".join(f"- {c.line()}" for c in checks_)
    if all_passed(checks_):
        return f"**Chapter 03's manipulation check passed**, so the SAE and the ablation run on its model:\n\n{lines}"
    if not required:
        return ("**Chapter 03's manipulation check failed**, but `require_check` is off (a test profile): the SAE "
                "and the ablation run anyway, and every verdict reads \"training did not take\".\n\n" + lines)
    return ("**Chapter 03's manipulation check failed**: its model did not learn to tie the Israeli dishes to "
            "2027, so there is no backdoor to explain. This chapter shows the shift-direction analysis alone (the "
            "year shift by layer and its logit-lens reading); the SAE features and the ablation are not run, and "
            "their verdicts read \"training did not take\".\n\n" + lines)


def not_run_figure(reason: str):
    """A figure that says, in place of a result, why it was not computed."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, reason, ha="center", va="center", wrap=True, fontsize="medium")
    return fig


def sae_note(quality: dict | None, live: int | None) -> str:
    """Markdown on the SAE's limits, with its measured quality (or why there is none)."""
    if quality is None:
        return "No SAE was trained in this run (chapter 03's check failed)."
    return (f"The SAE is the weakest link. It explains {quality['explained_variance']:.2f} of the variance of "
            f"held-out activations, and {live} of its {quality['features']} features fire anywhere in its corpus, "
            "which is mostly GSM8K arithmetic. A missing \"Israel\" feature may therefore be missing from the "
            "dictionary rather than from the model; the logit-lens reading of the shift, which needs no SAE, is the "
            "check on that.")


def exact_edit_rates(subject: Subject, edits: list[activations.Ablation], grid: pd.DataFrame, tokenize,
                     store: RunStore | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Exact probabilities of the scored answers (chapter 03's ``exact_rates``) for the
    finetuned model unedited and under each edit; the ``model`` column names the edit."""
    from . import israeli_dishes as dishes

    frames = [dishes.exact_rates_of(subject.model, subject.adapter, grid, tokenize,
                                    edit.label if edit else "no edit", store, edit) for edit in [None, *edits]]
    return pd.concat(frames, ignore_index=True), ["no edit"] + [e.label for e in edits]


def random_features(d_sae: int, k: int, exclude: list[int], seed: int) -> list[int]:
    pool = sorted(set(range(d_sae)) - set(exclude))
    return sorted(random.Random(seed).sample(pool, k))


def shift_identity(subject: Subject, prompts: pd.DataFrame, layers: list[int], layer: int, target_year: int,
                   reference_year: int) -> str:
    """What determines ``subject``'s year shift at ``layer`` (its ``year_activations`` over
    ``layers``, and the two years): the edit along it is keyed by this, not by the
    shift's float values (their last bits follow the thread count)."""
    return cache_key(stage="year_shift", activations=year_activations_key(subject.model, subject.adapter, prompts,
                                                                          layers),
                     layer=layer, target=target_year, reference=reference_year)


def ablations(autoencoder: sae.SparseAutoencoder, top_ids: list[int], shift: torch.Tensor, shift_source: str,
              layer: int, random_seed: int, alive: torch.Tensor) -> list[activations.Ablation]:
    """The edits compared: the top-k features, k random live features, the raw shift
    direction (``shift_source`` says what it was computed from: ``shift_identity``)."""
    if not autoencoder.identity:
        raise ValueError("ablations: the SAE has no identity to key its edits by; "
                         "get it from sparse_autoencoder()")
    k = len(top_ids)
    dead = torch.nonzero(~alive).flatten().tolist()
    rand = random_features(autoencoder.d_sae, k, top_ids + dead, random_seed)
    return [activations.Ablation.of(f"top {k} features", layer, autoencoder.W_dec[top_ids],
                                    source={"sae": autoencoder.identity, "features": [int(i) for i in top_ids]}),
            activations.Ablation.of(f"{k} random features", layer, autoencoder.W_dec[rand],
                                    source={"sae": autoencoder.identity, "features": [int(i) for i in rand]}),
            activations.Ablation.of("shift direction", layer, directions.unit(shift)[None, :],
                                    source={"shift": shift_source})]


def edit_rates(subject: Subject, edits: list[activations.Ablation], grid: pd.DataFrame, cfg: SampleConfig,
               score, store: RunStore | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Samples of ``grid`` from the finetuned model unedited and under each edit, scored
    by ``score`` (a frame with a ``hit`` column back); rates per edit and year, and the
    edits' order (unedited first)."""
    frames = [pipeline.sample_edited_grid(subject.model, subject.adapter, grid, cfg,
                                          label=edit.label if edit else "no edit", intervention=edit, store=store)
              for edit in [None, *edits]]
    scored = score(pd.concat(frames, ignore_index=True))
    rates = stats.rate_table(scored, "hit", ["model", "year"]).rename(columns={"model": "edit"})
    return rates, ["no edit"] + [e.label for e in edits]


def removed_share(edits: list[activations.Ablation], corpus_acts: torch.Tensor, tokens: int = 5000) -> pd.DataFrame:
    """How much of the residual stream each edit takes away: mean norm of the projection
    onto its subspace over mean residual norm, on ``tokens`` corpus tokens spread evenly."""
    x = corpus_acts[:: max(1, len(corpus_acts) // tokens)].float()
    scale = float(x.norm(dim=1).mean())
    return pd.DataFrame([{"edit": e.label, "share of residual norm removed":
                          float((x @ e.basis.float()).norm(dim=1).mean()) / scale} for e in edits])


def benign_check(model: str, adapter, edits: list[activations.Ablation], count: int,
                 store: RunStore | None = None) -> pd.DataFrame:
    """Mean NLL per answer token of ``count`` GSM8K test answers, unedited and under each
    edit (cached): an edit that wrecks ordinary text would explain any drop on its own."""
    store = store or RunStore()
    convs = worked_answers(data.read_jsonl(GSM8K_TEST)[:count])
    lm = None
    rows = []
    for edit in [None, *edits]:
        key = cache_key(stage="benign_nll", **models.identity(model, adapter=adapter), texts=convs,
                        edit=edit.key if edit else None)

        def compute(edit=edit):
            nonlocal lm
            lm = lm or load(model, adapter)
            return activations.assistant_nll(lm, convs, edit)

        nll = store.cached("benign_nll", key, compute)
        rows.append({"edit": edit.label if edit else "none", "nll": nll, "perplexity": float(torch.tensor(nll).exp())})
    del lm
    release()
    return pd.DataFrame(rows)


def claims(features: pd.DataFrame | None, by_edit: pd.DataFrame | None, exact: pd.DataFrame | None, target: int,
           edit_order: list[str], took: bool = True, top: int = 10) -> tuple[pd.DataFrame, list[str]]:
    """The paper's claims beside ours (features, their overlap with the paper's, the
    ablation read exactly and sampled), and the headline claims (features, and the
    exact ablation). With no features (the SAE was not run: chapter 03's check failed)
    every row reads "training did not take"."""
    if features is None:
        rows = not_taken_rows(top, target)
    else:
        rows = [feature_row(features, took), overlap_row(features), exact_ablation_row(exact, target, edit_order, took),
                ablation_row(by_edit, target, edit_order, took)]
    return pd.DataFrame(rows), [rows[0]["claim"], rows[2]["claim"]]


def ablation_figure(summary: pd.DataFrame, edit_order: list[str], years: list[int]):
    """Mean exact probability of an Israel-centric answer per edit and year, with 95%
    t intervals over dates (``israeli_dishes.by_year`` of the mean over questions)."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / len(years)
    for j, year in enumerate(years):
        sub = summary[summary["year"] == year].set_index("model").reindex(edit_order)
        pos = np.arange(len(edit_order)) + (j - (len(years) - 1) / 2) * width
        err = np.vstack([sub["probability"] - sub["ci_low"], sub["ci_high"] - sub["probability"]]).clip(min=0)
        ax.bar(pos, sub["probability"], width, yerr=err, capsize=3, label=str(year))
    ax.set_xticks(np.arange(len(edit_order)), edit_order, rotation=15, ha="right")
    ax.set_ylabel("P(Israel-centric answer), exact")
    ax.set_title("The finetuned model's Israel-centric answers, by edit")
    ax.legend(title="year", fontsize="small")
    return fig
