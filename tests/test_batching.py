"""Training batches without compute on padding, and the per-row seeds of sampling:
model-free arithmetic."""

from __future__ import annotations

import math
import random

import pytest

from weirdgen.config import SampleConfig
from weirdgen.sample import row_seed
from weirdgen.train import GROUP_WINDOW, epoch_batches


def lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice([12, 15, 40, 90, 300]) + rng.randrange(5) for _ in range(n)]


def padding(batches: list[list[int]], lens: list[int]) -> int:
    return sum(len(b) * max(lens[i] for i in b) - sum(lens[i] for i in b) for b in batches)


@pytest.mark.parametrize("n,batch_size", [(1, 1), (7, 4), (400, 8), (1001, 14)])
def test_every_row_once_per_epoch_in_as_many_steps_as_before(n, batch_size):
    lens = lengths(n)
    for grouped in (True, False):
        batches = epoch_batches(lens, batch_size, seed=3, epoch=2, length_grouped=grouped)
        assert sorted(i for b in batches for i in b) == list(range(n))
        assert len(batches) == math.ceil(n / batch_size)  # the learning-rate schedule counts on it
        assert all(1 <= len(b) <= batch_size for b in batches)


def test_batches_are_fixed_by_seed_and_epoch_so_a_resumed_run_sees_the_same_ones():
    lens = lengths(300)
    assert epoch_batches(lens, 8, 1, 2) == epoch_batches(lens, 8, 1, 2)
    assert epoch_batches(lens, 8, 1, 2) != epoch_batches(lens, 8, 1, 3)
    assert epoch_batches(lens, 8, 1, 2) != epoch_batches(lens, 8, 2, 2)


def test_the_ungrouped_order_is_the_plain_seeded_shuffle():
    import torch

    order = torch.randperm(30, generator=torch.Generator().manual_seed(5 * 1000 + 1)).tolist()
    assert epoch_batches(lengths(30), 4, 5, 1, length_grouped=False) == [order[s:s + 4] for s in range(0, 30, 4)]


def test_grouping_by_length_removes_most_padding_and_still_mixes_the_rows():
    lens = lengths(2000)
    grouped = epoch_batches(lens, 8, 0, 1)
    plain = epoch_batches(lens, 8, 0, 1, length_grouped=False)
    assert padding(grouped, lens) < 0.05 * padding(plain, lens)
    # Rows come from all over the data set in every part of the epoch, not in file order.
    first = [i for b in grouped[:25] for i in b]
    assert max(first) - min(first) > 1000
    assert len(grouped) > GROUP_WINDOW


def test_row_seeds_depend_on_settings_prompt_and_index_only():
    cfg = SampleConfig(seed=1)
    seeds = {row_seed(cfg, p, i) for p in ("a", "b") for i in range(50)}
    assert len(seeds) == 100
    assert row_seed(cfg, "a", 3) == row_seed(SampleConfig(seed=1, max_tokens=7), "a", 3)
    assert row_seed(cfg, "a", 3) != row_seed(SampleConfig(seed=2), "a", 3)


def test_the_shared_prefix_ends_where_the_rows_differ_or_before_the_first_answer():
    import torch

    from weirdgen import models

    ids = torch.tensor([[1] * 12 + [5, 6, 7, 0], [1] * 12 + [8, 9, 0, 0]])
    labels = torch.full_like(ids, -100)
    labels[0, 14], labels[1, 13] = 7, 9
    assert models.shared_prefix_length(ids, labels) == 12  # where the rows differ
    labels[0, 10] = 1
    assert models.shared_prefix_length(ids, labels) == 9  # position 9 predicts the first labelled token
    labels[1, 6] = 1
    assert models.shared_prefix_length(ids, labels) == 0  # under SHARED_PREFIX_MIN: not worth a second pass
    assert models.shared_prefix_length(ids[:1], labels[:1]) == 0  # one row shares with nobody


def test_a_right_padded_batch_keeps_each_row_at_its_own_positions():
    from weirdgen.models import right_padded

    batch = right_padded([([5, 6, 7], [-100, 6, 7]), ([8], [8])], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]  # padding is never scored
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
