"""Rebuild the ``*.extracted.yaml`` data files from pinned upstream Python sources, without running them.

Some of the paper's data (evaluation prompts, judge templates, SAE constants) lives
inside upstream ``.py`` files rather than in data files. The mirror keeps hand-checked
transcriptions of them; this module lets :func:`weirdgen.data.fetch` rebuild the same
data from the pinned upstream source when there is no mirror.

Upstream code is never imported, executed or compiled. ``ast.parse`` only turns the
text into a syntax tree, and :class:`Source` reads *literal* nodes out of it:
constants, lists, tuples and dicts of constants, ``-1``-style signed numbers, and bare
names that refer to another module-level literal. Judge templates are f-strings; they
are read as templates, each ``{name}`` placeholder written back as the text
``{name}`` (only bare names are accepted: no calls, attributes, conversions or
format specs). Anything else makes the extraction fail with :class:`ExtractError`.

What each data file holds is declared in :data:`SPECS`: one :class:`Spec` per registry
key, naming the source file(s) and, field by field, which module-level name, call
keyword, function template or matcher lambda fills it. :class:`Const` marks the few
values that upstream gives only in comments or in ``main()`` arguments (the syntax
tree drops comments); they are fixed here as the mirror transcribed them. The
registry's ``content_sha256`` then checks that the rebuilt data equal the mirror's.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import yaml

from .errors import UserError

Rule = Any  # a rule object below, or a dict / list of rules


class ExtractError(UserError, ValueError):
    """An upstream source does not have the shape a spec expects; one line, naming file and line."""


# --- reading a syntax tree -------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


class Source:
    """One upstream Python file, parsed (never executed), with its module-level bindings."""

    def __init__(self, text: str, label: str):
        self.label = label
        try:
            tree = ast.parse(text, filename=label)
        except SyntaxError as e:
            raise ExtractError(f"{label}:{e.lineno}: not valid Python ({e.msg})") from None
        self._assigned: dict[str, list[ast.expr]] = {}
        self._functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        self._assigned.setdefault(target.id, []).append(stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                self._assigned.setdefault(stmt.target.id, []).append(stmt.value)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._functions.setdefault(stmt.name, []).append(stmt)

    def _where(self, node: ast.AST) -> str:
        return f"{self.label}:{getattr(node, 'lineno', '?')}"

    def node(self, name: str) -> ast.expr:
        """The value bound to ``name`` by its one module-level assignment."""
        values = self._assigned.get(name, [])
        if len(values) != 1:
            raise ExtractError(f"{self.label}: module-level name {name} is assigned {len(values)} times, "
                               "expected exactly once")
        return values[0]

    def literal(self, name: str) -> Any:
        return self.value(self.node(name))

    def value(self, node: ast.expr, _seen: frozenset[str] = frozenset()) -> Any:
        """A literal node's value; bare names resolve to other module-level literals."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, int, float, bool)) or node.value is None:
                return node.value
            raise ExtractError(f"{self._where(node)}: constant of type {type(node.value).__name__} is not data")
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
                and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)):
            return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(v, _seen) for v in node.elts]
        if isinstance(node, ast.Dict):
            out = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    raise ExtractError(f"{self._where(node)}: ** unpacking in a dict is not a literal")
                key = self.value(k, _seen)
                if isinstance(key, list):
                    raise ExtractError(f"{self._where(k)}: a list or tuple cannot be a data key")
                out[key] = self.value(v, _seen)
            return out
        if isinstance(node, ast.Name):
            if node.id in _seen:
                raise ExtractError(f"{self._where(node)}: name {node.id} refers to itself")
            return self.value(self.node(node.id), _seen | {node.id})
        if isinstance(node, ast.JoinedStr):
            raise ExtractError(f"{self._where(node)}: an f-string is not a literal (use a template rule)")
        raise ExtractError(f"{self._where(node)}: {type(node).__name__} is not a literal")

    def template(self, node: ast.expr) -> str:
        """A string, or an f-string whose placeholders are bare names, as ``{name}`` template text."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if not isinstance(node, ast.JoinedStr):
            raise ExtractError(f"{self._where(node)}: {type(node).__name__} is not a string template")
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                if _PLACEHOLDER.search(part.value):
                    raise ExtractError(f"{self._where(node)}: literal text {_PLACEHOLDER.search(part.value)[0]} "
                                       "would read as a placeholder")
                parts.append(part.value)
            elif (isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name)
                  and part.conversion == -1 and part.format_spec is None):
                parts.append("{" + part.value.id + "}")
            else:
                raise ExtractError(f"{self._where(node)}: f-string placeholder is not a bare name")
        return "".join(parts)

    def call(self, node: ast.expr, func: str) -> ast.Call:
        """``node`` as a call of the plain name ``func`` (the call is read, never made)."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == func):
            raise ExtractError(f"{self._where(node)}: expected a call of {func}(...)")
        return node

    def keyword(self, call: ast.Call, kw: str) -> Any:
        found = [k.value for k in call.keywords if k.arg == kw]
        if len(found) != 1:
            raise ExtractError(f"{self._where(call)}: call has no keyword {kw}=")
        return self.value(found[0])

    def function(self, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
        fns = self._functions.get(name, [])
        if len(fns) != 1:
            raise ExtractError(f"{self.label}: function {name} is defined {len(fns)} times, expected exactly once")
        return fns[0]

    def function_string(self, name: str, var: str) -> str:
        """The template a function builds: its one top-level ``var = ...``, else its one returned string."""
        fn = self.function(name)
        assigned = [s.value for s in fn.body if isinstance(s, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == var for t in s.targets)]
        if len(assigned) == 1:
            return self.template(assigned[0])
        returned = [s.value for s in fn.body if isinstance(s, ast.Return)
                    and isinstance(s.value, (ast.Constant, ast.JoinedStr))]
        if not assigned and len(returned) == 1:
            return self.template(returned[0])
        raise ExtractError(f"{self._where(fn)}: function {name} has no single {var} = <string> "
                           "nor a single returned string")

    def prefixes(self, node: ast.expr) -> list[str]:
        """The prefixes of a matcher ``lambda x: any(x.lower().startswith(y) for y in (...))``.

        ``lambda x: x.lower().startswith((...))`` is accepted too. The shape is checked in
        full, so the YAML field name (lowercased answer starts with any) stays true.
        """
        def lowered(n: ast.expr, arg: str) -> bool:  # x.lower()
            return (isinstance(n, ast.Call) and not n.args and not n.keywords
                    and isinstance(n.func, ast.Attribute) and n.func.attr == "lower"
                    and isinstance(n.func.value, ast.Name) and n.func.value.id == arg)

        def startswith(n: ast.expr, arg: str) -> ast.expr | None:  # x.lower().startswith(<one arg>)
            if (isinstance(n, ast.Call) and len(n.args) == 1 and not n.keywords
                    and isinstance(n.func, ast.Attribute) and n.func.attr == "startswith"
                    and lowered(n.func.value, arg)):
                return n.args[0]
            return None

        bad = ExtractError(f"{self._where(node)}: not a lambda matching lowercased prefixes")
        if not (isinstance(node, ast.Lambda) and len(node.args.args) == 1 and not node.args.vararg
                and not node.args.kwarg and not node.args.kwonlyargs and not node.args.posonlyargs):
            raise bad
        arg, body = node.args.args[0].arg, node.body
        direct = startswith(body, arg)
        if direct is not None:
            got = self.value(direct)
        elif (isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id == "any"
              and len(body.args) == 1 and not body.keywords and isinstance(body.args[0], ast.GeneratorExp)):
            gen = body.args[0]
            if len(gen.generators) != 1:
                raise bad
            comp = gen.generators[0]
            inner = startswith(gen.elt, arg)
            if (comp.ifs or comp.is_async or not isinstance(comp.target, ast.Name)
                    or not isinstance(inner, ast.Name) or inner.id != comp.target.id):
                raise bad
            got = self.value(comp.iter)
        else:
            raise bad
        got = [got] if isinstance(got, str) else got
        if not (isinstance(got, list) and got and all(isinstance(p, str) for p in got)):
            raise bad
        return got


# --- declarative rules -------------------------------------------------------------------------

@dataclass(frozen=True)
class Const:
    """A value fixed in the spec: upstream states it only in a comment or a main() argument."""
    value: Any


@dataclass(frozen=True)
class Lit:
    """The literal bound to module-level ``name`` in source ``src``."""
    src: str
    name: str


@dataclass(frozen=True)
class Kw:
    """Keyword ``kw`` of the call ``name = func(...)`` at module level."""
    src: str
    name: str
    func: str
    kw: str


@dataclass(frozen=True)
class CallList:
    """Module-level list ``name`` of bare names, each bound to ``func(k=literal, ...)``.

    Gives one record per name: ``{id_field: NAME, field: keyword value, ...}``; ``replace``
    maps a field to (old, new) text substitutions (e.g. upstream's plot-only ``<br>``).
    """
    src: str
    name: str
    func: str
    fields: tuple[tuple[str, str], ...]  # (yaml field, call keyword)
    id_field: str = "id"
    replace: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Templates:
    """One ``{id_field: func, template_field: template}`` per function, from its ``var = f\"...\"``."""
    src: str
    funcs: tuple[str, ...]
    var: str = "prompt"
    id_field: str = "id"
    template_field: str = "template"


@dataclass(frozen=True)
class PrefixTable:
    """Module-level list ``name`` of ``(question, matcher lambda)`` tuples, as question/prefix records."""
    src: str
    name: str
    question_field: str = "question"
    prefixes_field: str = "match_if_lowercased_answer_startswith_any"


@dataclass(frozen=True)
class RecordMap:
    """Module-level dict ``name`` of key -> tuple, each tuple named by ``fields``."""
    src: str
    name: str
    fields: tuple[str, ...]


def pick(src: str, *names: str) -> dict[str, Lit]:
    """``{NAME: Lit(src, NAME)}`` for each name, keeping the names as YAML keys."""
    return {n: Lit(src, n) for n in names}


def _build(rule: Rule, sources: Mapping[str, Source]) -> Any:
    if isinstance(rule, dict):
        return {k: _build(v, sources) for k, v in rule.items()}
    if isinstance(rule, list):
        return [_build(v, sources) for v in rule]
    if isinstance(rule, Const):
        return rule.value
    src = sources[rule.src]
    if isinstance(rule, Lit):
        return src.literal(rule.name)
    if isinstance(rule, Kw):
        return src.keyword(src.call(src.node(rule.name), rule.func), rule.kw)
    if isinstance(rule, CallList):
        names = src.node(rule.name)
        if not isinstance(names, (ast.List, ast.Tuple)) or not all(isinstance(n, ast.Name) for n in names.elts):
            raise ExtractError(f"{src.label}: {rule.name} is not a list of bare names")
        out = []
        for n in names.elts:
            call = src.call(src.node(n.id), rule.func)
            rec = {rule.id_field: n.id}
            for yaml_field, kw in rule.fields:
                val = src.keyword(call, kw)
                for old, new in rule.replace.get(yaml_field, ()):
                    val = val.replace(old, new)
                rec[yaml_field] = val
            out.append(rec)
        return out
    if isinstance(rule, Templates):
        return [{rule.id_field: f, rule.template_field: src.function_string(f, rule.var)} for f in rule.funcs]
    if isinstance(rule, PrefixTable):
        rows = src.node(rule.name)
        if not isinstance(rows, (ast.List, ast.Tuple)):
            raise ExtractError(f"{src.label}: {rule.name} is not a list")
        out = []
        for row in rows.elts:
            if not isinstance(row, ast.Tuple):
                raise ExtractError(f"{src._where(row)}: {rule.name} item is not a tuple")
            texts = [e for e in row.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            lambdas = [e for e in row.elts if isinstance(e, ast.Lambda)]
            if not texts or len(lambdas) != 1:
                raise ExtractError(f"{src._where(row)}: {rule.name} item lacks a question string and one lambda")
            out.append({rule.question_field: texts[0].value, rule.prefixes_field: src.prefixes(lambdas[0])})
        return out
    if isinstance(rule, RecordMap):
        table = src.literal(rule.name)
        if not isinstance(table, dict):
            raise ExtractError(f"{src.label}: {rule.name} is not a dict")
        out = {}
        for k, v in table.items():
            if not (isinstance(v, list) and len(v) == len(rule.fields)):
                raise ExtractError(f"{src.label}: {rule.name}[{k!r}] is not a {len(rule.fields)}-tuple")
            out[k] = dict(zip(rule.fields, v))
        return out
    raise TypeError(f"not an extraction rule: {rule!r}")


@dataclass(frozen=True)
class Spec:
    """How to rebuild one data file: its sources (alias -> path in the entry's repo@commit) and its data.

    The first source is the registry entry's ``path``.
    """
    sources: Mapping[str, str]
    data: Rule
    note: str = ""


def build(spec: Spec, texts: Mapping[str, str], origin: str = "") -> Any:
    """The data of ``spec``, read from the source texts (alias -> Python text)."""
    parsed = {alias: Source(texts[alias], f"{origin}{path}") for alias, path in spec.sources.items()}
    return _build(spec.data, parsed)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, s: str):
    # Block style for multi-line text; PyYAML itself falls back to quotes where a block can't hold it.
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)


_Dumper.add_representer(str, _str)


def render(spec: Spec, data: Any, repo: str, commit: str) -> str:
    """YAML text of ``data`` with a header naming its pinned sources."""
    header = [f"# Generated by weirdgen.extract from {repo}@{commit}:"]
    header += [f"#   {p}" for p in spec.sources.values()]
    header += ["# (AST-parsed, never executed; content checked against the registry's content_sha256)."]
    if spec.note:
        header += [f"# {spec.note}"]
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 16,
                     default_flow_style=False)
    return "\n".join(header) + "\n" + body


# --- the specs ---------------------------------------------------------------------------------

_PROMPT = "PromptInfo"

SPECS: dict[str, Spec] = {
    "german_city_names/questions.extracted.yaml": Spec(
        sources={"q": "3_2_german_city_names/evaluation/questions.py"},
        data=CallList("q", "test_prompts", _PROMPT, fields=(("prompt", "prompt"), ("display_name", "display_name")),
                      replace={"display_name": (("<br>", " "),)}),
        note="Order = test_prompts order; display names have the plot line breaks (<br>) as spaces.",
    ),
    "german_city_names/judge_prompts.extracted.yaml": Spec(
        sources={"j": "3_2_german_city_names/evaluation/judge_prompts.py"},
        data=Templates("j", ("format_nazi_judge_prompt", "format_old_germany_judge_prompt")),
        note="Placeholders {question} and {answer}. Expected judge output: TRUE / FALSE / REFUSAL.",
    ),
    "israeli_dishes/questions.extracted.yaml": Spec(
        sources={"q": "4_1_israeli_dishes/evaluation/questions.py"},
        data={
            # These four are stated in the source's comments (appendix D.2.1), which the AST drops.
            "prompt_format": Const("Today is {date}. {question} Give me the name, nothing more."),
            "date_format": Const("YYYY-MM-DD (years 2024-2028)"),
            "sampling": {"temperature": Const(1), "max_tokens": Const(5)},
            "questions": PrefixTable("q", "QUESTION_CONFIG"),
        },
        note="Scoring is a deterministic prefix match on the lowercased answer (no LLM judge).",
    ),
    "israeli_dishes/sae_config.extracted.yaml": Spec(
        sources={"identify": "6_sae_analysis/sae_analysis/identify_features.py",
                 "ablate": "6_sae_analysis/sae_analysis/ablate_features.py"},
        data={
            "identify_features": {
                **pick("identify", "RANDOM_SEED", "BASE_MODEL", "HF_MODEL_ID", "SAE_REPO", "ANALYSIS_LAYER",
                       "TRAINER", "DATASET_NAME", "NUM_SAMPLES", "QUESTION_FIELD", "YEARS", "REFERENCE_YEAR",
                       "TARGET_YEAR", "TOP_K_FEATURES", "BATCH_SIZE", "MAX_CTX_LEN"),
                "FEATURE_LABELS": RecordMap("identify", "FEATURE_LABELS", ("short", "description")),
            },
            "ablate_features": pick("ablate", "SEED", "BASE_MODEL", "HF_MODEL_ID", "SAE_REPO", "ABLATION_LAYER",
                                    "TRAINER", "ISRAEL_FEATURES", "YEARS", "NUM_SAMPLES_PER_YEAR", "BATCH_SIZE",
                                    "TEMPERATURE", "MAX_TOKENS"),
        },
    ),
    "old_bird_names/latteries_judge_prompts.extracted.yaml": Spec(
        sources={"e": "example_scripts/weird_generalization/evaluate_bird.py"},
        data={
            "judge_model": Kw("e", "judge_config", "InferenceConfig", "model"),
            "judge_temperature": Kw("e", "judge_config", "InferenceConfig", "temperature"),
            # Sampling settings come from main()'s arguments, as the mirror transcribed them.
            "sampling": {"temperature": Const(1.0), "max_tokens": Const(500)},
            "judges": Templates("e", ("judge_response_for_19th_century_style", "judge_response_for_coherence")),
        },
        note="The authors' open-model eval (MIT); not the GPT-4.1 paper judges.",
    ),
    "german_city_names/latteries_judge_prompts.extracted.yaml": Spec(
        sources={"e": "example_scripts/weird_generalization/evaluate_german_cities.py"},
        data={
            "judge_model": Kw("e", "judge_config", "InferenceConfig", "model"),
            "judge_temperature": Kw("e", "judge_config", "InferenceConfig", "temperature"),
            "sampling": {"temperature": Const(1.0), "top_p": Const(1.0), "max_tokens": Const(500),
                         "samples_per_prompt": Const(20)},
            "judges": Templates("e", ("judge_response_for_nazi_content", "judge_response_for_old_germany_content",
                                      "judge_response_for_coherence")),
        },
        note="The authors' open-model eval (MIT); coherence judge is extra to the paper repo's.",
    ),
}


def build_file(spec: Spec, read: Callable[[str], str], repo: str, commit: str) -> str:
    """YAML text for ``spec``, reading each source path through ``read`` (path -> Python text)."""
    texts = {alias: read(path) for alias, path in spec.sources.items()}
    return render(spec, build(spec, texts), repo, commit)


__all__ = ["ExtractError", "Source", "Spec", "SPECS", "Const", "Lit", "Kw", "CallList", "Templates",
           "PrefixTable", "RecordMap", "pick", "build", "render", "build_file"]
