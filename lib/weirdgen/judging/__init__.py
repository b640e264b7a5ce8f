"""Judges: one protocol, its backends, the paper's judges and their calibration.

    judges.py       Verdict, the judge classes (key_parts, query, verdict, flag),
                    cached scoring of samples (judge_frame, flags, estimate)
    backend.py      backend_for(JudgeConfig): "local:<model>" or "openai:<model>"
    local.py        LocalBackend: exact option probabilities from an offline model
    openai.py       OpenAIBackend: any OpenAI-compatible chat API
    registry.py     every judge of the paper, built once from its prompts
    calibration.py  labelled families, evaluate / summarise, cuts fitted with their judge
"""

from .backend import backend_for
from .judges import (
                     MIN_RATING_MASS,
                     RATING_OPTIONS,
                     Backend,
                     ChoiceJudge,
                     Judge,
                     RatingJudge,
                     ReasoningJudge,
                     Verdict,
                     choice_verdict,
                     estimate,
                     fill,
                     flags,
                     judge_frame,
                     parse_answer_line,
                     pending,
                     rating_verdict,
                     score,
                     verdicts,
)
from .local import LocalBackend

__all__ = ["MIN_RATING_MASS", "RATING_OPTIONS", "Backend", "ChoiceJudge", "Judge", "LocalBackend", "RatingJudge",
           "ReasoningJudge", "Verdict", "backend_for", "choice_verdict", "estimate", "fill", "flags", "judge_frame",
           "parse_answer_line", "pending", "rating_verdict", "score", "verdicts"]
