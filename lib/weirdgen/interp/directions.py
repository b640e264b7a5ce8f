"""Linear algebra on residual-stream directions: the shift between two years, ranking
feature directions by their alignment with it, and projecting directions out.

Pure tensor functions, so the tests can check the math without a model.
"""

from __future__ import annotations

import torch


def mean_shift(activations: torch.Tensor, years: list[int] | torch.Tensor, target: int, reference: int) -> torch.Tensor:
    """mean(activations of ``target``-year prompts) − mean(those of ``reference``-year
    prompts); rows of ``activations`` line up with ``years``. Works on any trailing shape
    (e.g. one row per prompt × layer × d_model)."""
    years = torch.as_tensor(years)
    for year in (target, reference):
        if not bool((years == year).any()):
            raise ValueError(f"no activations for year {year} (years present: {sorted(set(years.tolist()))})")
    return activations[years == target].mean(0) - activations[years == reference].mean(0)


def cosine_ranking(directions: torch.Tensor, vector: torch.Tensor, top: int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and cosine similarities of the rows of ``directions`` (n × d) most aligned
    with ``vector`` (d), highest first."""
    cos = torch.nn.functional.cosine_similarity(directions.float(), vector.float()[None, :], dim=1)
    order = torch.argsort(cos, descending=True)
    order = order[:top] if top else order
    return order, cos[order]


def orthonormal_basis(directions: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis (d × r) of the span of the rows of ``directions`` (k × d)."""
    q, r = torch.linalg.qr(directions.float().T)
    keep = r.diagonal().abs() > 1e-6 * r.diagonal().abs().max()
    return q[:, keep]


def project_out(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``x`` (… × d) with its components along the orthonormal ``basis`` (d × r) removed."""
    b = basis.to(device=x.device, dtype=torch.float32)
    xf = x.float()
    return (xf - (xf @ b) @ b.T).to(x.dtype)


def unit(vector: torch.Tensor) -> torch.Tensor:
    return vector / vector.norm()
