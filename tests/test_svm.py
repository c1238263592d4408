"""The VOC07 SVM protocol: its AP definitions by hand, the batched solver against sklearn's LinearSVC
(the seed's reference), difficult labels, cost choice blind to the test split, and the stage."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from ssl_lib.benchmarks import svm as svm_module
from ssl_lib.benchmarks.features import write_feature_set
from ssl_lib.benchmarks.svm import (SEED_COSTS, SolverStats, average_precision, gram, normalize_rows, solve_svms,
                                    stratified_folds, train_svm_voc07, voc_ap)
from ssl_lib.errors import ConfigError, DataError
from ssl_lib.stages._cli import run_cli
from ssl_lib.stages.svm import build_parser, svm


def voc_like(n_train=150, n_test=120, dim=24, classes=3, seed=0, difficult=0.1):
    """Non-negative features with a direction per class; about 15 % positives, some difficult."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    present = rng.random((n, classes)) < 0.15
    present[:classes] |= np.eye(classes, dtype=bool)  # every class present somewhere in train
    present[n_train:n_train + classes] |= np.eye(classes, dtype=bool)  # ... and in test
    labels = np.where(present, 1, -1).astype(np.int8)
    labels[present & (rng.random((n, classes)) < difficult)] = 0
    labels[:classes][np.eye(classes, dtype=bool)] = 1
    labels[n_train:n_train + classes][np.eye(classes, dtype=bool)] = 1
    x = np.maximum(present @ rng.normal(size=(classes, dim)) + rng.normal(size=(n, dim)) + 0.5, 0).astype(np.float32)
    return x[:n_train], labels[:n_train], x[n_train:], labels[n_train:]


def linear_svc(cost):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=cost, class_weight={1: 2, -1: 1}, intercept_scaling=1.0, penalty="l2", loss="squared_hinge",
                     dual=True, tol=1e-10, max_iter=200000)


# ------------------------------------------------------------------------------------------ metrics

def test_voc_ap_is_all_points_interpolated_and_drops_difficult_entries():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    # ranked: +, -, +, (difficult: out), -, +  -> precision at the positives 1, 2/3, 3/5, each already
    # the best at or below its rank
    assert voc_ap(scores, [1, -1, 1, 0, -1, 1]) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # ranked: -, +, -, -, +, + -> precision 1/2, 2/5, 1/2; made monotone (max to the right) 1/2, 1/2, 1/2.
    # sklearn's non-interpolated AP would give 0.4667, the 11-point VOC AP 0.5 * 11 / 11 on another grid.
    assert voc_ap(scores, [-1, 1, -1, -1, 1, 1]) == pytest.approx(0.5)
    assert average_precision(scores, [-1, 1, -1, -1, 1, 1]) == pytest.approx((1 / 2 + 2 / 5 + 1 / 2) / 3)


def test_voc_ap_equals_the_seed_scripts_loop():
    def seed_ap(labels, scores):  # svm_helper.get_precision_recall + calculate_ap, as test_svm.py calls them
        keep = labels != 0
        t, p = (labels[keep] > 0).astype(float), scores[keep]
        tp = t[np.argsort(p)[::-1]]
        prec, rec = np.cumsum(tp) / np.arange(1, len(tp) + 1), np.cumsum(tp) / t.sum()
        mrec, mpre = np.concatenate([[0], rec, [1]]), np.concatenate([[0], prec, [0]])
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
        return ((mrec[idx] - mrec[idx - 1]) * mpre[idx]).sum()

    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.choice([1, -1, -1, -1, 0], size=60)
        labels[0] = 1
        scores = rng.normal(size=60)
        assert voc_ap(scores, labels) == pytest.approx(seed_ap(labels, scores), abs=1e-12)


def test_cross_validation_ap_counts_tied_scores_as_one_threshold():
    # one threshold at 0.5 (1 of 2 right, recall 1/2), one at 0.2 (2 of 3, recall 1)
    assert average_precision([0.5, 0.5, 0.2], [1, -1, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


def test_stratified_folds_deal_consecutive_blocks_per_label_like_sklearn():
    y = np.array([1, 1, 1, -1, -1, -1, -1, -1, -1])
    assert stratified_folds(y, 3).tolist() == [0, 1, 2, 0, 0, 1, 1, 2, 2]
    sklearn = pytest.importorskip("sklearn.model_selection")
    rng = np.random.default_rng(0)
    for _ in range(10):
        y = np.where(rng.random(rng.integers(20, 90)) < 0.2, 1, -1)
        y[:3], y[3:6] = 1, -1
        ref = np.empty(len(y), int)
        for k, (_, held) in enumerate(sklearn.StratifiedKFold(3).split(np.zeros(len(y)), y)):
            ref[held] = k
        assert stratified_folds(y, 3).tolist() == ref.tolist()


# ------------------------------------------------------------------------------------------- solver

@pytest.mark.parametrize("cholesky_max, batch_max", [(0, 256), (10 ** 6, 256), (10 ** 6, 0)],
                         ids=["cg-steps", "cholesky-steps", "cholesky-steps-one-at-a-time"])
def test_solver_reaches_the_optimum_sklearn_linearsvc_converges_to(cholesky_max, batch_max, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.setattr(svm_module, "CHOLESKY_BATCH_MAX", batch_max)
    x, labels, _, _ = voc_like(n_train=120, dim=16, classes=2, seed=1, difficult=0)
    x = normalize_rows(x.astype(np.float64))
    y = np.where(labels == 1, 1, -1)
    train = np.random.default_rng(0).random(y.shape) < 0.8          # each problem its own training rows
    costs = sorted(SEED_COSTS)
    stats = SolverStats()
    _, f = solve_svms(gram(torch.as_tensor(x))[None], torch.as_tensor(y)[None], torch.as_tensor(train)[None],
                      torch.tensor(costs, dtype=torch.float64)[None].expand(2, -1), cholesky_max=cholesky_max,
                      stats=stats)
    assert stats.not_converged == 0 and stats.all_active > 0 and stats.newton_steps > 0
    assert (stats.cg_steps > 0 and stats.cg_iterations > 0) if cholesky_max == 0 else \
        (stats.cholesky_steps > 0 and stats.cg_steps == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in range(2):
            for j, cost in enumerate(costs):
                ref = linear_svc(cost).fit(x[train[:, c]], y[train[:, c], c]).decision_function(x)
                ours = f[0, :, c, j].numpy()
                assert np.abs(ours - ref).max() <= 1e-5 * np.abs(ref).max(), (c, cost)
                assert average_precision(ours, y[:, c]) == pytest.approx(average_precision(ref, y[:, c]), abs=1e-3)


def test_solver_started_from_a_given_point_reaches_the_same_optimum():
    x, labels, _, _ = voc_like(n_train=120, dim=16, classes=2, seed=4, difficult=0)
    K = gram(normalize_rows(torch.as_tensor(x, dtype=torch.float64)))[None]
    y = torch.as_tensor(np.where(labels == 1, 1, -1))[None]
    train = torch.as_tensor(np.random.default_rng(1).random(labels.shape) < 0.8)[None]
    costs = torch.tensor([[0.05, 2.0]], dtype=torch.float64).expand(2, -1)
    cold_beta, cold_f = solve_svms(K, y, train, costs)
    stats = SolverStats()
    start = cold_beta * 0.7 + 0.01      # off the optimum, and nonzero on the rows each problem holds out
    beta, f = solve_svms(K, y, train, costs, start=start, stats=stats)
    assert stats.ridge_iterations == 0 and stats.newton_steps >= 4
    assert torch.allclose(f, cold_f, rtol=0, atol=1e-9 * float(cold_f.abs().max()))
    assert torch.equal(beta[~train[..., None].expand_as(beta)], torch.zeros(int((~train).sum()) * 2, dtype=beta.dtype))


def test_float32_systems_are_solved_to_float64_accuracy():
    from ssl_lib.benchmarks.svm import _spd_solve

    rng = np.random.default_rng(0)
    x = normalize_rows(rng.random((3, 200, 40)))
    Kb = torch.as_tensor(x @ x.transpose(0, 2, 1) + 1)                      # PSD, eigenvalues up to ~200
    dvec = torch.as_tensor(rng.choice([1 / 400, 1 / 200], size=(3, 200)))  # the dual's 1 / (2 C w) at C = 100
    rhs = torch.as_tensor(rng.choice([-1.0, 1.0], size=(3, 200)))
    exact, _ = _spd_solve(Kb, dvec, rhs)
    # numpy's solve: torch's batched LU (MKL getrf / laswp) fails once torch.set_num_threads(n > 1) has run
    ref = torch.as_tensor(np.linalg.solve((Kb + torch.diag_embed(dvec)).numpy(), rhs[..., None].numpy())[..., 0])
    assert float((exact - ref).norm() / ref.norm()) < 1e-10
    K32 = Kb.float()                                                        # the system the solver holds
    ref = torch.as_tensor(np.linalg.solve((K32.double() + torch.diag_embed(dvec)).numpy(), rhs[..., None].numpy())[..., 0])
    got, info = _spd_solve(K32, dvec, rhs)
    assert got.dtype == torch.float64 and bool((info == 0).all())
    assert float((got - ref).norm() / ref.norm()) < 1e-8    # float32 alone: 8e-4 here, one refinement 9e-7


def test_preconditioner_keeps_v_weighted_outer_products_exact_through_updates():
    from ssl_lib.benchmarks.svm import _Preconditioner

    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((2, 300, 90)))
    pre = _Preconditioner(x @ x.mT + 1, slots=3)
    w = torch.as_tensor(rng.choice([0.0, 1.0, 2.0], size=(2, 300, 2)))
    for step in range(3):   # all rows new, then many rows changed (one product), then a few (their rows)
        if step == 1:
            w = torch.where(torch.as_tensor(rng.random(w.shape) < 0.5), 2.0 - w, w)
        if step == 2:
            w[0, :7], w[1, :3] = 2.0 - w[0, :7], 2.0 - w[1, :3]
        got = pre.update(torch.tensor([2, 0]), w)
        V = pre.V.double()
        ref = torch.einsum("gnk,gnj,gnl->gjkl", V, w, V)
        torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6 * float(ref.abs().max()))
    assert bool((pre.A[:, 1] == 0).all())   # a slot no update named


def test_cholesky_of_large_float32_blocks_matches_torch_and_reports_failures():
    from ssl_lib.benchmarks.svm import _SPOTRF, _cholesky

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 300, 50)) / 5
    A = torch.as_tensor(x @ x.transpose(0, 2, 1) + 1 + 0.5 * np.eye(300), dtype=torch.float32)
    A[1, 7, 7] = -1.0                                           # not positive definite: info names the column
    ref, ref_info = torch.linalg.cholesky_ex(A)
    work = A.clone()
    got, info = _cholesky(work)
    assert (got.data_ptr() == work.data_ptr()) == (_SPOTRF is not None)      # LAPACK's: in place
    assert info.tolist() == ref_info.tolist() and info[0] == 0 and info[1] == 8
    torch.testing.assert_close(got[0].tril(), ref[0], rtol=0, atol=1e-5)
    b = torch.as_tensor(rng.random((300, 1)), dtype=torch.float32)   # the solves read the lower triangle only
    half = torch.linalg.solve_triangular(got[0], b, upper=False)
    torch.testing.assert_close(torch.linalg.solve_triangular(got[0].mT, half, upper=True),
                               torch.cholesky_solve(b, ref[0]), rtol=1e-3, atol=0)


def test_nystrom_extends_the_top_eigenvectors_of_a_principal_block_to_the_whole_matrix():
    from ssl_lib.benchmarks.svm import _nystrom, _top_eigen

    x = torch.as_tensor(np.random.default_rng(0).standard_normal((300, 12)))
    K = x @ x.T                                                             # rank 12: Nystrom is exact
    runs = [(0, 120), (200, 300)]
    rows = torch.cat([torch.arange(lo, hi) for lo, hi in runs])
    V = _nystrom(K, runs, _top_eigen(K[rows][:, rows][None], 12)[0])
    torch.testing.assert_close(V @ V.T, K, rtol=0, atol=1e-8 * float(K.abs().max()))


def test_solver_preconditions_its_cg_steps_with_a_given_eigenbasis():
    from ssl_lib.benchmarks.svm import _top_eigen

    x, labels, _, _ = voc_like(n_train=150, dim=40, classes=2, seed=2, difficult=0)
    K = gram(normalize_rows(torch.as_tensor(x, dtype=torch.float64)))[None]
    y = torch.as_tensor(np.where(labels == 1, 1, -1))[None]
    train = torch.ones_like(y, dtype=torch.bool)
    costs = torch.tensor([[1.0]], dtype=torch.float64).expand(2, -1)
    results = {}
    for name, V in [("none", torch.zeros(1, 150, 16, dtype=torch.float64)), ("top", _top_eigen(K, 16))]:
        stats = SolverStats()
        results[name] = solve_svms(K, y, train, costs, cholesky_max=0, V=V, stats=stats)[1], stats.cg_iterations
    torch.testing.assert_close(results["none"][0], results["top"][0], rtol=0, atol=1e-7)
    assert results["top"][1] < results["none"][1]


def test_gram_mirrors_its_upper_blocks_exactly():
    a = torch.rand(1030, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(gram(a), a @ a.T + 1)
    b = torch.rand(7, 6, dtype=torch.float64)
    assert torch.equal(gram(a, b), a @ b.T + 1)


def test_thread_policy_runs_on_one_thread_unless_all_threads_pay(monkeypatch):
    from ssl_lib.benchmarks import svm as mod

    threads = torch.get_num_threads()
    seen = {}

    @mod._thread_policy
    def probe():
        seen["inside"] = torch.get_num_threads()
        a = torch.ones(4, 4)
        seen["product"] = mod._mm(a, a)[0, 0].item()
        seen["after_product"] = torch.get_num_threads()

    for pays, expected in [(False, 1), (True, threads)]:
        monkeypatch.setattr(mod, "_threads_pay", lambda t, pays=pays: pays)
        probe()
        assert seen == {"inside": expected, "product": 4.0, "after_product": expected}
        assert torch.get_num_threads() == threads


def test_protocol_chooses_the_costs_and_aps_of_the_seed_scripts():
    pytest.importorskip("sklearn")
    from sklearn.model_selection import cross_val_score

    xtr, ytr, xte, yte = voc_like(seed=2)
    got = train_svm_voc07(xtr, ytr, xte, yte, dtype=torch.float64)
    xtr64, xte64 = normalize_rows(xtr.astype(np.float64)), normalize_rows(xte.astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in range(ytr.shape[1]):
            y = np.where(ytr[:, c] == 1, 1, -1)  # train_svm_kfold: difficult (0) becomes -1
            cv = [cross_val_score(linear_svc(cost), xtr64, y, cv=3, scoring="average_precision").mean()
                  for cost in SEED_COSTS]
            np.testing.assert_allclose(got["cv_ap"][c], cv, atol=1e-6)
            assert got["cost"][c] == SEED_COSTS[int(np.argmax(cv))]
            scores = linear_svc(got["cost"][c]).fit(xtr64, y).decision_function(xte64)
            assert got["ap"][c] == pytest.approx(voc_ap(scores, yte[:, c]), abs=1e-6)
    assert got["mAP"] == pytest.approx(got["ap"].mean())


def test_difficult_entries_are_negatives_in_training_and_out_of_the_test_ap():
    xtr, ytr, xte, yte = voc_like(seed=4, difficult=0.3)
    costs = [1.0, 0.01]
    base = train_svm_voc07(xtr, ytr, xte, yte, costs=costs, dtype=torch.float64)
    as_absent = train_svm_voc07(xtr, np.where(ytr == 0, -1, ytr), xte, yte, costs=costs, dtype=torch.float64)
    assert (ytr == 0).any() and base["cost"] == as_absent["cost"]
    np.testing.assert_array_equal(base["ap"], as_absent["ap"])
    as_present = train_svm_voc07(xtr, np.where(ytr == 0, 1, ytr), xte, yte, costs=costs, dtype=torch.float64)
    assert not np.array_equal(base["cv_ap"], as_present["cv_ap"])
    # test: a difficult image counts for nothing, wherever it ranks
    keep = (yte != 0).all(1)
    only_clear = train_svm_voc07(xtr, ytr, xte[keep], yte[keep], costs=costs, dtype=torch.float64)
    difficult_everywhere = yte.copy()
    difficult_everywhere[~keep] = 0
    padded = train_svm_voc07(xtr, ytr, xte, difficult_everywhere, costs=costs, dtype=torch.float64)
    np.testing.assert_allclose(padded["ap"], only_clear["ap"], atol=1e-12)


def test_cost_choice_never_reads_the_test_split():
    xtr, ytr, xte, yte = voc_like(seed=5)
    clean = train_svm_voc07(xtr, ytr, xte, yte, dtype=torch.float64)
    poisoned = train_svm_voc07(xtr, ytr, np.full_like(xte, np.nan), -yte, dtype=torch.float64)
    assert poisoned["cost"] == clean["cost"]
    np.testing.assert_array_equal(poisoned["cv_ap"], clean["cv_ap"])


# -------------------------------------------------------------------------------------------- stage

def feature_set(tmp_path, train_x=None, test_x=None, train_y=None, test_y=None, classes=("cat", "dog", "car")):
    xtr, ytr, xte, yte = voc_like(classes=len(classes))
    train_x, test_x = (xtr if train_x is None else train_x), (xte if test_x is None else test_x)
    train_y, test_y = (ytr if train_y is None else train_y), (yte if test_y is None else test_y)
    folder = tmp_path / "features"
    folder.mkdir()
    feats = {"train": {"pretrained": {"feat5": train_x, "avgpool": train_x[:, :8]}},
             "test": {"pretrained": {"feat5": test_x, "avgpool": test_x[:, :8]}}}
    write_feature_set(folder, feats, {"train": train_y, "test": test_y},
                      {"classes": list(classes), "algorithm": "test", "backbone_sha256": "0" * 64})
    return str(folder)


def test_stage_writes_the_seed_table_per_layer(tmp_path, capsys):
    out = tmp_path / "svm"
    metrics = svm(feature_set(tmp_path), str(out), costs=[1.0, 0.1, 0.01])
    written = json.loads((out / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    assert written["protocol"] == "svm_voc07" and written["labels"] == "multi_label"
    assert set(written["layers"]) == {"feat5", "avgpool"}
    assert written["best_layer"] == max(written["layers"], key=lambda k: written["layers"][k]["mAP"])
    for res in written["layers"].values():
        assert set(res["ap"]) == set(res["cost"]) == {"cat", "dog", "car"}
        assert 0 < res["mAP"] <= 1 and set(res["cost"].values()) <= {1.0, 0.1, 0.01}
    assert written["num_train"] == 150 and written["num_test"] == 120
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()] == ["feat5", "avgpool"]


def test_single_label_features_are_read_one_vs_rest(tmp_path):
    rng = np.random.default_rng(0)
    ytr, yte = np.arange(90) % 3, np.arange(60) % 3
    centers = rng.normal(size=(3, 8))
    xtr = (centers[ytr] + rng.normal(size=(90, 8))).astype(np.float32)
    xte = (centers[yte] + rng.normal(size=(60, 8))).astype(np.float32)
    metrics = svm(feature_set(tmp_path, xtr, xte, ytr, yte), str(tmp_path / "out"), layers=["feat5"], costs=[1.0])
    assert metrics["labels"] == "one_vs_rest" and metrics["layers"]["feat5"]["mAP"] > 0.6


@pytest.mark.parametrize("case, message", [
    ("no test positive", "class 'dog' has 0 present"),
    ("two train positives", "class 'cat' has 2 present"),
    ("empty test split", "split 'test'"),
    ("wrong width", "width 24 in train and 20 in test"),
    ("unknown label", "values [3]"),
])
def test_bad_input_is_named_before_any_svm_runs(tmp_path, monkeypatch, case, message):
    xtr, ytr, xte, yte = voc_like()
    if case == "no test positive":
        yte[:, 1] = np.where(yte[:, 1] == 1, -1, yte[:, 1])
    elif case == "two train positives":
        ytr[:, 0] = -1
        ytr[:2, 0] = 1
    elif case == "empty test split":
        xte, yte = xte[:0], yte[:0]
    elif case == "wrong width":
        xte = xte[:, :20]
    else:
        ytr[5, 2] = 3
    features = feature_set(tmp_path, xtr, xte, ytr, yte)
    monkeypatch.setattr("ssl_lib.stages.svm.train_svm_voc07", lambda *a, **k: pytest.fail("a solver ran"))
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        svm(features, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    features = feature_set(tmp_path)
    assert run_cli(build_parser(), svm, ["--features", features, "--output", str(tmp_path / "o"),
                                         "--layers", "feat9"]) == 2
    assert "feat9" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        svm(features, str(tmp_path / "o"), folds=1)
