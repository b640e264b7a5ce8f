"""The local judge backend: a registered offline model's exact next-token probabilities."""

from __future__ import annotations

import math
from functools import cached_property

import torch

from .. import models


class LocalBackend:
    """Scores options with a local causal LM's exact next-token probabilities."""

    concurrency = 1  # one model on the CPU: parallel calls would only compete for cores
    paid = False

    def __init__(self, model_name: str, dtype: str = "auto"):
        self.model_name = model_name
        self.dtype = models.resolve_dtype(dtype, judging=True)
        self.fingerprint = f"local:{models.fingerprint(model_name)}:{models.DTYPES[self.dtype]}"

    @cached_property
    def lm(self) -> models.LoadedModel:
        return models.load(self.model_name, dtype=self.dtype)

    @cached_property
    def _digit_start(self) -> torch.Tensor:
        """Vocabulary mask of tokens that would continue a number."""
        tok = self.lm.tokenizer
        size = self.lm.model.get_output_embeddings().weight.shape[0]
        mask = torch.zeros(size, dtype=torch.bool)
        for token_id in range(min(size, len(tok))):
            text = tok.decode([token_id])
            mask[token_id] = bool(text) and text[0].isdigit()
        return mask

    def option_probs(self, prompt: str, options: tuple[str, ...], numeric: bool) -> dict[str, float]:
        lm = self.lm
        prompt_ids = lm.chat_ids([{"role": "user", "content": prompt}], add_generation_prompt=True)
        seqs = {o: tuple(lm.tokenizer.encode(o, add_special_tokens=False)) for o in options}
        logp: dict[tuple[int, ...], torch.Tensor] = {}  # prefix -> log P(next token | prompt + prefix)
        with torch.inference_mode():
            ids = torch.tensor([prompt_ids], device=lm.device)
            # The output layer at the last position only: the prompt's other ≈250 positions'
            # vocabulary-wide logits were ≈15% of a verdict's FLOPs, and nothing reads them.
            out = lm.model(input_ids=ids, use_cache=True, logits_to_keep=1)
            logp[()] = torch.log_softmax(out.logits[0, -1].float(), -1)
            cache, rows = models.cache_of(out), [()]
            depth = 1
            while True:
                # Prefixes whose next-token distribution we need: to extend them, or to end them.
                need = sorted({s[:depth] for s in seqs.values() if len(s) > depth or (numeric and len(s) == depth)})
                if not need:
                    break
                cache.reorder_cache(torch.tensor([rows.index(p[:-1]) for p in need], device=lm.device))
                step = torch.tensor([[p[-1]] for p in need], device=lm.device)
                mask = torch.ones((len(need), len(prompt_ids) + depth), dtype=torch.long, device=lm.device)
                out = lm.model(input_ids=step, attention_mask=mask, use_cache=True, **{models.cache_argument(): cache})
                for p, logits in zip(need, out.logits[:, -1].float()):
                    logp[p] = torch.log_softmax(logits, -1)
                cache, rows = models.cache_of(out), need
                depth += 1
        probs = {}
        for option, seq in seqs.items():
            lp = sum(float(logp[seq[:k]][seq[k]]) for k in range(len(seq)))
            if numeric:
                continue_p = float(logp[seq].exp()[self._digit_start.to(lm.device)].sum())
                lp += math.log(max(1e-12, 1.0 - continue_p))
            probs[option] = math.exp(lp)
        return probs


    def complete(self, prompt: str, max_tokens: int) -> str:
        lm = self.lm
        ids = torch.tensor([lm.chat_ids([{"role": "user", "content": prompt}], add_generation_prompt=True)],
                           device=lm.device)
        with torch.inference_mode():
            out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                    max_new_tokens=max_tokens, pad_token_id=lm.tokenizer.pad_token_id,
                                    temperature=None, top_p=None, top_k=None)
        return lm.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


