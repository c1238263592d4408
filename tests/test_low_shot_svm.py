"""The low-shot SVM protocol: the sampler, the seed's best-cost figure and our CV-chosen one against
sklearn, the CV choice blind to the test split, and the stage."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from ssl_lib.benchmarks.svm import SEED_COSTS, low_shot_svm_voc07, normalize_rows, sample_low_shot, voc_ap
from ssl_lib.errors import DataError
from ssl_lib.stages.low_shot_svm import low_shot_svm
from test_svm import feature_set, linear_svc, voc_like


def test_sampler_draws_k_present_and_c_minus_1_times_k_absent_images_per_class():
    _, labels, _, _ = voc_like(n_train=400, classes=4, difficult=0.3)
    for k in (1, 2, 4):
        draws = [sample_low_shot(labels, k, s, seed=0) for s in range(5)]
        for rows in draws:
            for c, r in enumerate(rows):
                assert len(np.unique(r)) == len(r) == 4 * k and (np.diff(r) > 0).all()
                assert (labels[r, c] == 1).sum() == k and (labels[r, c] == -1).sum() == 3 * k  # never difficult
        for c in range(4):
            assert len({tuple(rows[c]) for rows in draws}) == 5  # five distinct samples
    again = sample_low_shot(labels, 2, 3, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, sample_low_shot(labels, 2, 3, seed=0)))
    assert any(not np.array_equal(a, b) for a, b in zip(again, sample_low_shot(labels, 2, 3, seed=1)))


def _seed_reference(xtr, ytr, xte, yte, k, samples, costs, folds=3):
    """train_svm_low_shot + test_svm_low_shot + aggregate_low_shot_svm_stats with sklearn, plus the
    CV choice made with cross_val_score on each sample."""
    from sklearn.model_selection import cross_val_score

    xtr, xte = normalize_rows(xtr.astype(np.float64)), normalize_rows(xte.astype(np.float64))
    C = ytr.shape[1]
    test_ap, cv = np.zeros((samples, C, len(costs))), np.zeros((samples, C, len(costs)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in range(samples):
            for c, r in enumerate(sample_low_shot(ytr, k, s, seed=0)):
                y = np.where(ytr[r, c] == 1, 1, -1)
                for j, cost in enumerate(costs):
                    test_ap[s, c, j] = voc_ap(linear_svc(cost).fit(xtr[r], y).decision_function(xte), yte[:, c])
                    if k > 1:
                        cv[s, c, j] = cross_val_score(linear_svc(cost), xtr[r], y, cv=min(folds, k),
                                                      scoring="average_precision").mean()
    sample_map = test_ap.mean(1)
    best = int(sample_map.mean(0).argmax())
    cv_map = np.take_along_axis(test_ap, cv.argmax(2)[..., None], 2)[..., 0].mean(1)
    return sample_map, best, cv_map


@pytest.mark.parametrize("k", [1, 2, 4])
def test_figures_match_the_seed_scripts_run_with_sklearn(k):
    pytest.importorskip("sklearn")
    xtr, ytr, xte, yte = voc_like(n_train=300, classes=3, seed=6)
    costs = [1.0, 10.0, 0.0625, 0.001]
    got = low_shot_svm_voc07(xtr, ytr, xte, yte, ks=[k], samples=3, costs=costs, dtype=torch.float64)[k]
    sample_map, best, cv_map = _seed_reference(xtr, ytr, xte, yte, k, 3, costs)
    np.testing.assert_allclose(got["map"], sample_map, atol=1e-6)
    assert got["best_cost"] == pytest.approx({"mean": sample_map[:, best].mean(), "std": sample_map[:, best].std(),
                                              "cost": costs[best]}, abs=1e-6)
    assert got["cv_cost"] == pytest.approx({"mean": cv_map.mean(), "std": cv_map.std()}, abs=1e-6)


def test_one_shot_cv_takes_the_first_cost():
    xtr, ytr, xte, yte = voc_like(n_train=300, classes=3, seed=7)
    got = low_shot_svm_voc07(xtr, ytr, xte, yte, ks=[1, 2], samples=2, costs=[0.001, 100.0], dtype=torch.float64)
    assert (got[1]["cv_choice"] == 0.001).all()
    first = got[1]["map"][:, 0]
    assert got[1]["cv_cost"] == pytest.approx({"mean": first.mean(), "std": first.std()}, abs=1e-12)
    assert (got[2]["cv_choice"] == 100.0).any()  # from k = 2 on, two folds choose


def test_cv_cost_never_reads_the_test_split():
    xtr, ytr, xte, yte = voc_like(n_train=300, classes=3, seed=8)
    costs = [1.0, 0.01, 0.0001]
    clean = low_shot_svm_voc07(xtr, ytr, xte, yte, ks=[2, 4], samples=3, costs=costs, dtype=torch.float64)
    poisoned = low_shot_svm_voc07(xtr, ytr, np.full_like(xte, np.nan), -yte, ks=[2, 4], samples=3, costs=costs,
                                  dtype=torch.float64)
    for k in (2, 4):
        assert len(np.unique(clean[k]["cv_choice"])) > 1  # the choice depends on the class and sample
        np.testing.assert_array_equal(poisoned[k]["cv_choice"], clean[k]["cv_choice"])


def test_stage_writes_mean_and_std_per_k(tmp_path, capsys):
    out = tmp_path / "low_shot"
    metrics = low_shot_svm(feature_set(tmp_path), str(out), ks=[2, 1], samples=2, costs=[1.0, 0.01])
    written = json.loads((out / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    assert written["protocol"] == "low_shot_svm" and written["ks"] == [1, 2] and written["samples"] == 2
    assert set(written["layers"]) == {"feat5", "avgpool"} and written["best_layer"] in written["layers"]
    for res in written["layers"].values():
        assert set(res["best_cost"]) == set(res["cv_cost"]) == {"1", "2"}
        for k in ("1", "2"):
            assert 0 < res["best_cost"][k]["mean"] <= 1 and res["best_cost"][k]["std"] >= 0
            assert res["best_cost"][k]["cost"] in (1.0, 0.01) and 0 < res["cv_cost"][k]["mean"] <= 1
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_a_k_larger_than_a_class_allows_is_named_before_any_svm_runs(tmp_path, monkeypatch):
    monkeypatch.setattr("ssl_lib.stages.low_shot_svm.low_shot_svm_voc07", lambda *a, **k: pytest.fail("a solver ran"))
    with pytest.raises(DataError, match=r"class '\w+' has \d+ present and \d+ absent images in split 'train'.*k=96"):
        low_shot_svm(feature_set(tmp_path), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
