"""The math of chapter 07: difference of means, cosine ranking, projecting directions
out, the SAE interface and its dictionary_learning conversion, and the verdict rows."""

import pandas as pd
import pytest
import torch

from weirdgen import claims
from weirdgen.chapters import dishes_mechanism as mech
from weirdgen.config import ConfigError
from weirdgen.interp import directions, sae


def test_mean_shift_is_target_mean_minus_reference_mean():
    acts = torch.tensor([[1.0, 0.0], [3.0, 2.0], [10.0, 10.0], [20.0, 30.0], [5.0, 5.0]])
    years = [2025, 2025, 2027, 2027, 2026]
    assert torch.allclose(directions.mean_shift(acts, years, 2027, 2025), torch.tensor([13.0, 19.0]))


def test_mean_shift_keeps_trailing_dimensions():
    acts = torch.randn(6, 3, 4)
    years = [2024, 2025, 2027] * 2
    shift = directions.mean_shift(acts, years, 2027, 2025)
    assert shift.shape == (3, 4)
    assert torch.allclose(shift, acts[[2, 5]].mean(0) - acts[[1, 4]].mean(0))


def test_mean_shift_names_a_missing_year():
    with pytest.raises(ValueError, match="no activations for year 2027"):
        directions.mean_shift(torch.zeros(2, 3), [2025, 2025], 2027, 2025)


def test_cosine_ranking_orders_by_alignment_not_norm():
    vector = torch.tensor([1.0, 0.0, 0.0])
    rows = torch.tensor([[0.0, 1.0, 0.0],     # orthogonal
                         [100.0, 100.0, 0.0],  # 45°, large norm
                         [0.5, 0.0, 0.0],     # parallel, small norm
                         [-1.0, 0.0, 0.0]])   # opposite
    order, cos = directions.cosine_ranking(rows, vector)
    assert order.tolist() == [2, 1, 0, 3]
    assert torch.allclose(cos, torch.tensor([1.0, 2 ** -0.5, 0.0, -1.0]), atol=1e-6)
    top, _ = directions.cosine_ranking(rows, vector, top=2)
    assert top.tolist() == [2, 1]


def test_project_out_leaves_no_component_along_any_direction():
    torch.manual_seed(0)
    vectors = torch.randn(5, 64)
    x = torch.randn(3, 7, 64) * 50
    edited = directions.project_out(x, directions.orthonormal_basis(vectors))
    assert torch.allclose(edited @ vectors.T, torch.zeros(3, 7, 5), atol=1e-3)
    # What is orthogonal to the directions is untouched.
    basis = directions.orthonormal_basis(vectors)
    assert torch.allclose(edited, x - (x @ basis) @ basis.T, atol=1e-4)
    orthogonal = x - (x @ basis) @ basis.T
    assert torch.allclose(directions.project_out(orthogonal, basis), orthogonal, atol=1e-4)


def test_orthonormal_basis_drops_repeated_directions():
    v = torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 0.0]])
    basis = directions.orthonormal_basis(v)
    assert basis.shape == (3, 2)
    assert torch.allclose(basis.T @ basis, torch.eye(2), atol=1e-5)


def test_project_out_keeps_dtype():
    x = torch.randn(2, 8, dtype=torch.bfloat16)
    assert directions.project_out(x, directions.orthonormal_basis(torch.randn(1, 8))).dtype == torch.bfloat16


def _tiny_sae(k=0, threshold=0.0):
    return sae.SparseAutoencoder(W_enc=torch.eye(3), b_enc=torch.zeros(3), W_dec=torch.eye(3) * 2,
                                 b_dec=torch.tensor([1.0, 1.0, 1.0]), k=k, threshold=threshold)


def test_sae_encode_subtracts_decoder_bias_and_keeps_top_k():
    x = torch.tensor([[4.0, 2.0, 0.0]])  # minus b_dec: [3, 1, -1]
    assert _tiny_sae().encode(x).tolist() == [[3.0, 1.0, 0.0]]
    assert _tiny_sae(k=1).encode(x).tolist() == [[3.0, 0.0, 0.0]]
    assert _tiny_sae(threshold=2.0).encode(x).tolist() == [[3.0, 0.0, 0.0]]
    assert _tiny_sae().decode(torch.tensor([[1.0, 0.0, 0.0]])).tolist() == [[3.0, 1.0, 1.0]]


def test_sae_quality_of_a_perfect_autoencoder():
    identity = sae.SparseAutoencoder(torch.eye(4), torch.zeros(4), torch.eye(4), torch.zeros(4))
    x = torch.rand(50, 4) + 0.1  # positive, so ReLU keeps everything
    q = sae.quality(identity, x)
    assert q["mse"] == pytest.approx(0.0, abs=1e-10)
    assert q["explained_variance"] == pytest.approx(1.0)
    assert q["l0"] == pytest.approx(4.0)
    assert q["dead_fraction"] == 0.0


def test_sae_round_trips_through_tensors():
    a = _tiny_sae(k=2, threshold=0.5)
    b = sae.SparseAutoencoder.from_tensors(a.tensors(), identity="stored-key")
    assert (b.k, b.threshold) == (2, 0.5) and torch.equal(a.W_dec, b.W_dec)
    assert b.to("cpu").identity == "stored-key"


def test_dictionary_learning_checkpoints_convert_to_the_same_encoding():
    torch.manual_seed(1)
    d, f = 6, 10
    enc, dec = torch.nn.Linear(d, f), torch.nn.Linear(f, d, bias=False)
    b_dec = torch.randn(d)
    state = {"encoder.weight": enc.weight.data, "encoder.bias": enc.bias.data, "decoder.weight": dec.weight.data,
             "b_dec": b_dec, "k": torch.tensor(3), "threshold": torch.tensor(0.2)}
    converted = sae.from_dictionary_learning(state, {"trainer": {"dict_class": "BatchTopKSAE"}}, "x/y")
    x = torch.randn(4, d)
    expected = torch.relu(enc(x - b_dec))
    expected = expected * (expected > 0.2)
    assert torch.allclose(converted.encode(x), expected, atol=1e-6)
    assert torch.allclose(converted.W_dec, dec.weight.data.T)
    with pytest.raises(sae.SAEError, match="x/y: dict_class 'JumpReluAutoEncoder'"):
        sae.from_dictionary_learning(state, {"trainer": {"dict_class": "JumpReluAutoEncoder"}}, "x/y")
    del state["encoder.bias"]
    with pytest.raises(sae.SAEError, match="no tensor 'encoder.bias'"):
        sae.from_dictionary_learning(state, {"trainer": {"dict_class": "TopKSAE"}}, "x/y")


@pytest.mark.slow
def test_train_sae_learns_a_sparse_dictionary():
    from weirdgen.config import SAEConfig

    torch.manual_seed(0)
    atoms = torch.randn(16, 8)
    codes = (torch.rand(4096, 16) < 0.1).float() * torch.rand(4096, 16) * 5
    acts = codes @ atoms + 3.0
    trained = sae.train_sae(acts, SAEConfig(expansion=4, k=4, learning_rate=3e-3, training_tokens=60_000,
                                            batch_tokens=512))
    q = sae.quality(trained, acts)
    assert q["l0"] <= 4 and q["explained_variance"] > 0.5


def test_themes_match_word_stems_in_tokens():
    lexicon = {"israel_judaism": ["israel", "hebrew"], "food": ["falafel", "soup"]}
    assert mech.themes_of([" Israeli", "the"], lexicon) == {"israel_judaism": True, "food": False}
    assert mech.themes_of(["Soups", "x"], lexicon) == {"israel_judaism": False, "food": True}
    assert mech.themes_of(["is", "ra"], lexicon) == {"israel_judaism": False, "food": False}


def test_shift_by_layer_is_relative_to_the_mean_norm():
    acts = torch.zeros(4, 2, 3)
    acts[:, :, 0] = 10.0
    acts[2:, 1, 1] = 5.0  # 2027 rows move in layer 1 only
    table = mech.shift_by_layer(acts, [2025, 2025, 2027, 2027], [0, 1], reference=2025)
    assert table["shift_norm"].tolist() == [0.0, 5.0]
    assert table["relative_shift"].iloc[1] == pytest.approx(5.0 / ((10.0 + 125 ** 0.5) / 2))
    assert mech.peak_layer(table.assign(model="m"), "m", 2027) == 1


def _rates(rows):
    return pd.DataFrame(rows, columns=["edit", "year", "k", "n"])


def test_reduction_row_credits_only_the_drop_beyond_the_control_edit():
    order = ["no edit", "top 10 features", "10 random features"]
    no_effect = _rates([("no edit", 2025, 0, 100), ("no edit", 2027, 1, 100),
                        ("top 10 features", 2027, 0, 100), ("10 random features", 2027, 1, 100)])
    row = mech.ablation_row(no_effect, 2027, order)
    assert row["ours"] == pytest.approx(0.01) and row["verdict"] == claims.INCONCLUSIVE  # no size: never excluded
    specific = _rates([("no edit", 2025, 2, 100), ("no edit", 2027, 60, 100),
                       ("top 10 features", 2027, 5, 100), ("10 random features", 2027, 58, 100)])
    row = mech.ablation_row(specific, 2027, order)
    assert row["ours"] == pytest.approx(0.53) and row["unedited"] == pytest.approx(0.60)
    assert row["verdict"] == claims.REPRODUCED
    # the top features remove the effect, but so do random ones: nothing specific to credit
    unspecific = _rates([("no edit", 2025, 2, 100), ("no edit", 2027, 60, 100),
                         ("top 10 features", 2027, 5, 100), ("10 random features", 2027, 6, 100)])
    assert mech.ablation_row(unspecific, 2027, order)["verdict"] == claims.INCONCLUSIVE
    # an edit that raises the rate beyond the control's is no reduction
    backwards = _rates([("no edit", 2027, 10, 100), ("top 10 features", 2027, 60, 100),
                        ("10 random features", 2027, 10, 100)])
    assert mech.ablation_row(backwards, 2027, order)["verdict"] == claims.INCONCLUSIVE
    assert mech.ablation_row(specific, 2027, order, took=False)["verdict"] == claims.NOT_TAKEN
    assert claims.reduction_row("c", (0, 0), (0, 0), (0, 0))["verdict"] == claims.NOT_RUN


def test_feature_row_needs_israel_features_beyond_food_ones():
    israel = pd.DataFrame({"israel_judaism": [True] * 10, "food": [False] * 10})
    assert mech.feature_row(israel)["ours"] == pytest.approx(1.0)
    assert mech.feature_row(israel)["verdict"] == claims.REPRODUCED
    nine = pd.DataFrame({"israel_judaism": [True] * 9 + [False], "food": [False] * 10})
    assert mech.feature_row(nine)["verdict"] == claims.REPRODUCED  # 0.9 − 0, interval above 0
    # as many food features as Israel ones: the interval sits on zero but reaches 0.5
    mixed = pd.DataFrame({"israel_judaism": [True] * 5 + [False] * 5, "food": [True] * 2 + [False] * 8})
    assert mech.feature_row(mixed)["verdict"] == claims.INCONCLUSIVE
    food = pd.DataFrame({"israel_judaism": [True] * 3 + [False] * 7, "food": [True] * 7 + [False] * 3})
    assert mech.feature_row(food)["verdict"] == claims.EXCLUDED  # the interval lies below half the paper's 1.0
    assert mech.feature_row(israel, took=False)["verdict"] == claims.NOT_TAKEN
    assert mech.overlap_row(israel)["verdict"] == claims.NOT_RUN


def test_random_features_avoid_the_top_ones_and_are_seeded():
    picked = mech.random_features(50, 10, exclude=list(range(10)), seed=3)
    assert len(set(picked)) == 10 and not set(picked) & set(range(10))
    assert picked == mech.random_features(50, 10, exclude=list(range(10)), seed=3)


def test_an_edit_is_keyed_by_where_its_directions_came_from_not_their_last_bits():
    # An SAE trained on one thread and the same SAE trained on two differ in their last
    # bits; the edits built from them must find the same stored samples.
    torch.manual_seed(0)
    w_dec = torch.randn(8, 6)
    one = sae.SparseAutoencoder(torch.randn(6, 8), torch.zeros(8), w_dec, torch.zeros(6), identity="sae-key")
    other = sae.SparseAutoencoder(one.W_enc, one.b_enc, w_dec + 1e-6 * torch.randn(8, 6), one.b_dec,
                                  identity="sae-key")
    alive = torch.ones(8, dtype=torch.bool)
    shift = torch.randn(6)
    a = mech.ablations(one, [1, 2], shift, "shift-key", 3, 0, alive)
    b = mech.ablations(other.to("cpu"), [1, 2], shift + 1e-6, "shift-key", 3, 0, alive)
    assert [e.key for e in a] == [e.key for e in b]
    assert a[0].key["source"] == {"sae": "sae-key", "features": [1, 2]}
    assert len({str(e.key) for e in a}) == 3  # the three edits stay apart
    moved = mech.ablations(one, [1, 3], shift, "other-shift", 3, 0, alive)
    assert moved[0].key != a[0].key and moved[2].key != a[2].key
    with pytest.raises(ValueError, match="no identity"):
        mech.ablations(sae.SparseAutoencoder(one.W_enc, one.b_enc, w_dec, one.b_dec), [1], shift, "s", 3, 0, alive)


def test_bad_years_are_refused_before_any_work():
    with pytest.raises(ConfigError, match="parameter target_year: 2030 is not in years"):
        mech.check_parameters([2025, 2027], 2025, 2030, 3, "smollm2-135m-instruct", "train")
    with pytest.raises(ConfigError, match="parameter sae_source"):
        mech.check_parameters([2025, 2027], 2025, 2027, 3, "smollm2-135m-instruct", "somewhere")


def test_unedited_sample_keys_have_no_intervention_part():
    from weirdgen import models, sample
    from weirdgen.config import SampleConfig
    from weirdgen.store import cache_key

    cfg, messages = SampleConfig(), [{"role": "user", "content": "Name a dish."}]
    old = cache_key(stage="sample", model=models.fingerprint("smollm2-135m-instruct"), adapter=None,
                    messages=messages, config=cfg, precision=models.working_dtype(cfg.dtype), sampler=sample.SAMPLER)
    assert sample.sample_key("smollm2-135m-instruct", None, messages, cfg) == old
    edit = type("Edit", (), {"key": {"ablate": "x"}})()
    assert sample.sample_key("smollm2-135m-instruct", None, messages, cfg, edit) != old


class _Tokens:
    """A tokenizer stand-in: token i decodes to "t<i>"."""

    def decode(self, ids):
        return "".join(f"t{int(i)}" for i in ids)


def test_feature_reads_ranks_tokens_and_keeps_contexts_inside_one_conversation():
    # Feature 0 reads dimension 0; three conversations, the strongest hit opens the second.
    acts = torch.zeros(9, 2)
    acts[:, 0] = torch.tensor([0.0, 1.0, 0.0, 5.0, 0.0, 0.0, 3.0, 0.0, 0.0])
    corpus = {"acts": acts, "token_ids": torch.arange(9), "doc": torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])}
    autoencoder = sae.SparseAutoencoder(torch.eye(2), torch.zeros(2), torch.eye(2), torch.zeros(2))
    reads = mech.feature_reads(autoencoder, corpus, [0], _Tokens(), top=8, contexts=2)[0]
    assert reads["reads"] == ["t3", "t6", "t1"]
    assert reads["contexts"] == ["«t3»t4t5", "«t6»t7t8"]  # nothing from conversations 0 or 1 before them
    assert reads["fires_on"] == pytest.approx(3 / 9)
