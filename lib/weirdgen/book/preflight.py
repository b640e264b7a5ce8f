"""Every check that can run before a kernel starts or a model loads.

For each notebook a build will run: each parameter's type against its default in the
notebook's parameters cell, every stage setting's range (the same typed configs the
notebook builds), the model and judge names against the registry, and the data the
chapter reads (every file of its data folders by sha256, every training file row by
row). A failure is one line naming the profile file and section, or the data file and
line, and what to do; nothing has run yet.
"""

from __future__ import annotations

import ast
from typing import Any

from .. import config, data, models
from ..errors import UserError

# Parameters whose value names a model, a judge, or lists of them.
MODEL_PARAMETERS = ("model",)
JUDGE_PARAMETERS = ("judge", "judges", "judge_candidates", "api_judge")
# Parameters that pick a chapter's training sets by name (keys of its TRAINING_SETS or FACTS).
SET_PARAMETERS = ("training_sets", "control_sets", "fact_sets")


class PreflightError(UserError):
    """A parameter or data file that would fail the notebook (or silently change it)."""


def default_of(spec: dict) -> Any:
    """A parameters-cell default as a value (None when it is not a literal)."""
    try:
        return ast.literal_eval(spec.get("default", ""))
    except (ValueError, SyntaxError):
        return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _fits(value: Any, default: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and (not default or all(_fits(v, default[0]) for v in value))
    return isinstance(value, type(default))


def check_types(given: dict[str, Any], known: dict[str, dict], where: str) -> None:
    for name, value in given.items():
        default = default_of(known.get(name, {}))
        if not _fits(value, default):
            element = ""
            if isinstance(default, list) and default:
                element = " of " + _kind(default[0]).split(" ", 1)[-1] + " values"  # "a list of integer values"
            raise PreflightError(f"{where}: parameter '{name}' must be {_kind(default)}{element} like its default "
                                 f"{default!r}, got {value!r}; fix it there")


def check_stages(values: dict[str, Any], where: str) -> None:
    """Build the typed stage configs a notebook will build, so a bad range fails now."""
    stages = [stage for stage, names in config.PARAMETERS.items() if set(names) & set(values)]
    try:
        config.Stages.from_parameters(values, *stages)
    except config.ConfigError as e:
        raise PreflightError(f"{where}: {e}") from None


def check_hub_model(hub_id: str) -> str | None:
    """Why a hub model cannot be loaded here, or None: it is in the local Hugging Face
    cache, or the hub knows it. Asked once, with a short timeout, so that a typo costs
    a second rather than a minute of retries inside the notebook."""
    from huggingface_hub import model_info, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        return None
    try:
        model_info(hub_id, timeout=5)
    except Exception as e:  # noqa: BLE001 - every failure means the same: it cannot load
        name = type(e).__name__
        if "NotFound" in name:
            return "the hub has no such model (check the id's spelling and case)"
        return f"it is not in the local Hugging Face cache and the hub cannot be reached ({name})"
    return None


def check_names(values: dict[str, Any], where: str) -> None:
    for name in MODEL_PARAMETERS:
        if isinstance(values.get(name), str):
            if values[name].startswith("openai:"):  # an API model: its key is checked by the chapter's setup
                continue
            try:
                spec = models.spec_for(values[name])
            except models.ModelError as e:
                raise PreflightError(f"{where}: parameter '{name}': {e}") from None
            problem = check_hub_model(spec.hub_id) if spec.hub_id else None
            if problem:
                raise PreflightError(f"{where}: parameter '{name}': model '{values[name]}' ({spec.hub_id}): {problem}; "
                                     "set HF_HOME to a cache that holds it, or fix the name")
    for name in JUDGE_PARAMETERS:
        found = values.get(name)
        for judge in [found] if isinstance(found, str) else found if isinstance(found, list) else []:
            kind, _, model = str(judge).partition(":")
            if kind == "openai" and model:
                continue
            if kind != "local" or not model:
                raise PreflightError(f"{where}: parameter '{name}': '{judge}' is neither local:<model> nor "
                                     "openai:<model>")
            if model not in models.REGISTRY or models.REGISTRY[model].hub_id:
                offline = ", ".join(n for n, s in models.REGISTRY.items() if not s.hub_id)
                raise PreflightError(f"{where}: parameter '{name}': '{model}' is not an offline judge model "
                                     f"(choose from {offline})")


def chapter_of(notebook: str):
    from ..chapters import CHAPTERS, PAGES

    return next((c for c in CHAPTERS + PAGES if c.NOTEBOOK == notebook), None)


def check_data(notebook: str, values: dict[str, Any]) -> None:
    """Every data file of the chapter's folders by sha256, and each chosen training set
    row by row; a chapter's unknown set name is refused here too."""
    chapter = chapter_of(notebook)
    if chapter is None:
        return
    sets = {**getattr(chapter, "TRAINING_SETS", {}), **{k: [v] for k, v in getattr(chapter, "FACTS", {}).items()}}
    for name in SET_PARAMETERS:
        if isinstance(values.get(name), list):
            config.check_choices(name, values[name], sets)
    try:
        for key in sorted(k for k in data.registry() if k.split("/")[0] in chapter.DATA_FOLDERS):
            data.fetch(key)
        chosen = {s for name in SET_PARAMETERS for s in values.get(name) or [] if s in sets}
        for key in sorted({k for s in chosen for k in sets[s]}):
            data.read_chat_jsonl(key)
    except UserError as e:
        raise PreflightError(str(e)) from None


def check(notebook: str, section: str, known: dict[str, dict], given: dict[str, Any], params_label: str) -> None:
    """All of the above for one notebook; ``given`` are the values the profile sets."""
    where = f"{params_label} [{section}]"
    given = {k: v for k, v in given.items() if k != "profile"}
    check_types(given, known, where)
    defaults = {name: default_of(spec) for name, spec in known.items()}
    values = {name: v for name, v in defaults.items() if v is not None} | given
    try:
        check_stages(values, where)
        check_names(given, where)  # a notebook's own defaults are its author's to keep right
        check_data(notebook, values)
        chapter = chapter_of(notebook)
        if hasattr(chapter, "preflight"):  # a chapter's own checks of its parameters
            chapter.preflight(values)
    except config.ConfigError as e:
        raise PreflightError(f"{where}: {e}") from None
