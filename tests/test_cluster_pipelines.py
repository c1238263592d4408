"""The cluster path of the pipelines, offline: golden compiled YAML, object-storage credentials from a
Secret on every stage, digest-pinned images, submit / schedule against a fake KFP client, the kfp
CLI's `run submit` spelling, and which stages a changed parameter makes KFP compute again."""
import difflib
import functools
import inspect
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import kfp
import kfp.client
import pytest
import yaml
from click.testing import CliRunner
from kfp import dsl, local
from kfp.cli import cli as kfp_cli
from kfp_server_api import V2beta1Run

from components import images
from components.pretrain import pretrain
from pipelines import cache_keys, schedule, submit
from pipelines.compile import COMPILED, PIPELINES, compile_all
from ssl_lib.stages.plan import PROTOCOLS
from pipelines.object_storage import OPTIONAL_KEYS, REQUIRED_KEYS, use_object_storage
from ssl_lib.engine.pytorchjob import OBJECT_STORAGE_SECRET, current_namespace

REPO = Path(__file__).resolve().parents[1]
FAKE_KEY_ID = "AKIA" + "QX7TESTONLY0000Z"
FAKE_SECRET = "Zx" + "9kQ2mWv7Lp4Rt8Yb3Nc6Hd1Fg5Js0Ua2Ie7Ko4Xw"


def documents(path):
    return list(yaml.safe_load_all(Path(path).read_text()))


# ---- golden files ---------------------------------------------------------------------------------

def test_compiled_pipelines_match_the_committed_golden_files(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SSL_LIB_IMAGE_REGISTRY"}
    subprocess.run([sys.executable, "-m", "pipelines.compile", "--out", str(tmp_path)], cwd=REPO, env=env,
                   check=True, capture_output=True)
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.yaml")}
    golden = {p.name: p.read_text() for p in COMPILED.glob("*.yaml")}
    assert set(fresh) == {f"{name}.yaml" for name in PIPELINES}
    assert set(golden) == set(fresh), "pipelines/compiled/ and the pipelines differ: run `make golden` and commit"
    for name, text in fresh.items():
        diff = "".join(list(difflib.unified_diff(golden[name].splitlines(True), text.splitlines(True),
                                                 f"pipelines/compiled/{name}", "fresh compile"))[:60])
        assert text == golden[name], f"{name} is out of date: run `make golden` (or `make compile`) and commit\n{diff}"


def test_compiling_twice_gives_byte_identical_yaml(tmp_path):
    first, second = compile_all(tmp_path / "a"), compile_all(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


# ---- object storage: a Secret, never parameters ---------------------------------------------------

def container_tasks(spec):
    """(task path, executor label) of every task, in sub-DAGs too, that runs a container."""
    executors = spec["deploymentSpec"]["executors"]
    found = []

    def walk(dag, prefix):
        for name, task in dag["tasks"].items():
            component = spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"], f"{prefix}{name}/")
            elif "container" in executors[component["executorLabel"]]:
                found.append((prefix + name, component["executorLabel"]))

    walk(spec["root"]["dag"], "")
    return found


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_stage_gets_the_object_storage_secret_as_env(name):
    spec, platform = documents(COMPILED / f"{name}.yaml")
    tasks = container_tasks(spec)
    assert {t.rsplit("/", 1)[-1] for t, _ in tasks} >= {"knn", "report"}
    configs = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for task, label in tasks:
        mapped = {(m["secretKey"], m["envVar"], s["optional"]) for s in configs.get(label, {}).get("secretAsEnv", [])
                  if s["secretName"] == OBJECT_STORAGE_SECRET for m in s["keyToEnv"]}
        assert mapped == {(k, k, False) for k in REQUIRED_KEYS} | {(k, k, True) for k in OPTIONAL_KEYS}, task


def test_the_secret_keys_are_those_of_the_env_template_and_the_kustomization_names_the_secret():
    template = (REPO / "manifests" / "object-storage.env.example").read_text().splitlines()
    keys = {line.split("=", 1)[0] for line in template if line and not line.startswith("#")}
    assert keys == set(REQUIRED_KEYS) | set(OPTIONAL_KEYS)
    kustomization = yaml.safe_load((REPO / "manifests" / "kustomization.yaml").read_text())
    assert [g["name"] for g in kustomization["secretGenerator"]] == [OBJECT_STORAGE_SECRET]


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_no_pipeline_parameter_names_or_holds_a_credential(name):
    spec, _ = documents(COMPILED / f"{name}.yaml")
    text = (COMPILED / f"{name}.yaml").read_text()
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert not [p for p in params if any(w in p.lower() for w in ("secret", "password", "token", "key_id", "access"))]
    assert "REPLACE_ME" not in text and "AKIA" not in text


def test_kfp_local_runs_a_task_that_carries_the_secret_config(tmp_path):
    @dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
    def echo(x: int) -> int:
        return x + 1

    @dsl.pipeline(name="secret-config-locally")
    def tiny(x: int = 1) -> int:
        task = echo(x=x)
        use_object_storage(task)
        return task.output

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path), enable_caching=False)
    assert tiny(x=2).output == 3


# ---- the pretrain stage on the cluster --------------------------------------------------------------

def test_the_pipeline_gives_pretrain_its_own_image_and_the_object_storage_secret():
    spec, _ = documents(COMPILED / "pretrain_and_benchmark.yaml")
    task = spec["root"]["dag"]["tasks"]["pretrain"]["inputs"]["parameters"]
    container = spec["deploymentSpec"]["executors"]["exec-pretrain"]["container"]
    assert task["image"]["runtimeValue"]["constant"] == images.TRAINING_IMAGE == container["image"]
    inputs = pretrain.component_spec.inputs
    assert inputs["secret_env"].default == OBJECT_STORAGE_SECRET
    assert inputs["namespace"].default == ""  # the pod's own


@pytest.mark.parametrize("name", ["pretrain_and_benchmark", "benchmark"])
def test_knn_asks_for_the_gpus_of_the_knn_gpus_parameter_and_cpus_by_default(name):
    spec, _ = documents(COMPILED / f"{name}.yaml")
    assert spec["root"]["inputDefinitions"]["parameters"]["knn_gpus"]["defaultValue"] == 0
    knn_executors = [e for key, e in spec["deploymentSpec"]["executors"].items() if key.startswith("exec-knn")]
    assert knn_executors
    for executor in knn_executors:
        assert executor["container"]["resources"]["accelerator"] == {
            "resourceCount": "{{$.inputs.parameters['pipelinechannel--knn_gpus']}}",
            "resourceType": "nvidia.com/gpu", "type": "nvidia.com/gpu"}


@pytest.mark.parametrize("name", ["pretrain_and_benchmark", "benchmark"])
def test_every_parameter_a_task_reads_is_defined_where_the_task_runs(name):
    """KFP resolves a task's inputs in its enclosing DAG (a dsl.If branch is one): a parameter that
    DAG does not define fails the run on the cluster, and kfp.local says so only when it gets there."""
    spec, _ = documents(COMPILED / f"{name}.yaml")
    dags = {"root": spec["root"], **{k: c for k, c in spec["components"].items() if "dag" in c}}
    for dag_name, comp in dags.items():
        defined = set(comp.get("inputDefinitions", {}).get("parameters", {}))
        for task_name, task in comp["dag"]["tasks"].items():
            params = task.get("inputs", {}).get("parameters", {})
            for key, value in params.items():
                source = value.get("componentInputParameter")
                assert source is None or source in defined, f"{dag_name}/{task_name}.{key} reads undefined {source}"
            for value in params.values():
                for ref in re.findall(r"inputs\.parameters\['([^']+)'\]", json.dumps(value)):
                    assert ref in params, f"{dag_name}/{task_name} refers to {ref}, which it does not take"


def test_pytorchjob_namespace_is_the_pods_own_else_kubeflow(tmp_path):
    ns = tmp_path / "namespace"
    ns.write_text("kubeflow-user-example-com\n")
    assert current_namespace(str(ns)) == "kubeflow-user-example-com"
    assert current_namespace(str(tmp_path / "absent")) == "kubeflow"


# ---- images pinned by digest ----------------------------------------------------------------------

SHA = "sha256:" + "ab" * 32


def test_without_recorded_digests_the_components_run_the_tag(tmp_path):
    assert images.pinned("cpu", "reg.example/me", tmp_path / "digests.json") == "reg.example/me/ssl-lib-cpu:0.1.0"


def test_a_recorded_digest_of_the_same_tag_pins_the_image(tmp_path):
    path = tmp_path / "digests.json"
    images.record("cuda", f"reg.example/me/ssl-lib-cuda@{SHA}", "reg.example/me", path)
    assert images.pinned("cuda", "reg.example/me", path) == f"reg.example/me/ssl-lib-cuda@{SHA}"
    assert images.pinned("cpu", "reg.example/me", path) == "reg.example/me/ssl-lib-cpu:0.1.0"


def test_a_digest_of_another_registry_or_version_is_not_used(tmp_path):
    path = tmp_path / "digests.json"
    images.record("cuda", f"reg.example/me/ssl-lib-cuda@{SHA}", "reg.example/me", path)
    with pytest.warns(UserWarning, match="using the tag alone"):
        assert images.pinned("cuda", "other.example/you", path) == "other.example/you/ssl-lib-cuda:0.1.0"


@pytest.mark.parametrize("repo_digest", ["", "reg.example/me/ssl-lib-cuda:0.1.0", f"reg.example/me/ssl-lib-cpu@{SHA}",
                                         "reg.example/me/ssl-lib-cuda@sha256:123"])
def test_recording_refuses_what_is_not_a_digest_of_the_family(tmp_path, repo_digest):
    with pytest.raises(ValueError, match="reg.example/me/ssl-lib-cuda@sha256"):
        images.record("cuda", repo_digest, "reg.example/me", tmp_path / "digests.json")
    assert not (tmp_path / "digests.json").exists()


def test_a_malformed_digests_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "digests.json"
    path.write_text('{"cuda": {"image": "x", "digest": "latest"}}')
    with pytest.raises(ValueError, match="digests.json"):
        images.pinned("cuda", "reg.example/me", path)


# ---- submit, schedule and the kfp CLI against a fake client --------------------------------------

class FakeClient:
    """Records every call; `existing` are the names of recurring runs already there."""
    instances = []

    def __init__(self, host=None, client_id=None, namespace="kubeflow", *args, **kwargs):
        self.init = dict(host=host, namespace=namespace)
        self.calls = []
        self.existing = list(FakeClient.existing)
        FakeClient.instances.append(self)

    existing = []

    def create_experiment(self, name, description=None, namespace=None):
        self.calls.append(("create_experiment", dict(name=name, namespace=namespace)))
        return types.SimpleNamespace(experiment_id="exp-1")

    def create_run_from_pipeline_package(self, pipeline_file, **kwargs):
        self.calls.append(("create_run_from_pipeline_package", dict(pipeline_file=pipeline_file, **kwargs)))
        return types.SimpleNamespace(run_id="run-1")

    def run_pipeline(self, **kwargs):
        self.calls.append(("run_pipeline", kwargs))
        return types.SimpleNamespace(run_id="run-1")

    def get_run(self, run_id):
        return V2beta1Run(run_id=run_id, display_name="r", state="PENDING")

    def list_recurring_runs(self, experiment_id=None, page_size=10, page_token="", **kwargs):
        runs = [types.SimpleNamespace(display_name=n, recurring_run_id=f"rr-{i}") for i, n in enumerate(self.existing)]
        return types.SimpleNamespace(recurring_runs=runs, next_page_token="")

    def delete_recurring_run(self, recurring_run_id):
        self.calls.append(("delete_recurring_run", dict(recurring_run_id=recurring_run_id)))

    def create_recurring_run(self, **kwargs):
        self.calls.append(("create_recurring_run", kwargs))
        return types.SimpleNamespace(recurring_run_id="rr-new")


REAL_CLIENT = kfp.client.Client  # before any test replaces it


def _as_the_real_client(cls):
    """Every method of the fake first binds its arguments to kfp.Client's own signature of the same
    name, so a misspelt or missing argument fails here as it would against a real server."""
    for name, fn in list(vars(cls).items()):
        if callable(fn) and (not name.startswith("_") or name == "__init__"):
            real = inspect.signature(getattr(REAL_CLIENT, name))  # AttributeError: no such method in kfp

            def checked(self, *args, _fn=fn, _real=real, **kwargs):
                _real.bind(self, *args, **kwargs)
                return _fn(self, *args, **kwargs)
            setattr(cls, name, functools.wraps(fn)(checked))
    return cls


_as_the_real_client(FakeClient)


def test_the_fake_client_refuses_what_kfp_client_refuses():
    client = FakeClient(host="http://kfp")
    with pytest.raises(TypeError, match="argumentz"):
        client.create_run_from_pipeline_package(pipeline_file="p.yaml", argumentz={})
    with pytest.raises(TypeError):
        client.create_recurring_run(experiment_id="e", job_name="j", cron_expresion="0 0 * * *")
    with pytest.raises(TypeError):
        FakeClient(hots="http://kfp")
    client.create_run_from_pipeline_package(pipeline_file="p.yaml", arguments={}, run_name="r")  # real names pass


@pytest.fixture
def fake_kfp(monkeypatch):
    FakeClient.instances, FakeClient.existing = [], []
    monkeypatch.setattr(kfp, "Client", FakeClient)
    monkeypatch.setattr(kfp.client, "Client", FakeClient)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.delenv("KFP_HOST", raising=False)
    monkeypatch.delenv("KFP_NAMESPACE", raising=False)
    return FakeClient


def recorded(fake):
    (client,) = fake.instances
    return client


def test_submit_passes_the_parameters_typed_and_no_credentials(fake_kfp):
    rc = submit.main(["--host", "https://kfp.example", "--namespace", "team", "--experiment", "mocov2",
                      "--param", "source=s3://ssl-lib/raw/fmnist", "--param", "knn_ks=[10,20]",
                      "--param", "num_workers=2", "--param", "launcher=pytorchjob"])
    assert rc == 0
    client = recorded(fake_kfp)
    assert client.init == {"host": "https://kfp.example", "namespace": "team"}
    ((call, kwargs),) = client.calls
    assert call == "create_run_from_pipeline_package"
    assert kwargs["pipeline_file"] == str(COMPILED / "pretrain_and_benchmark.yaml")
    assert kwargs["arguments"] == {"source": "s3://ssl-lib/raw/fmnist", "knn_ks": [10, 20], "num_workers": 2,
                                   "launcher": "pytorchjob"}
    assert kwargs["experiment_name"] == "mocov2" and kwargs["enable_caching"] is None
    assert FAKE_KEY_ID not in repr(client.__dict__) and FAKE_SECRET not in repr(client.__dict__)


@pytest.mark.parametrize("argv,message", [
    (["--param", "aws_secret_access_key=x"], "takes no parameter aws_secret_access_key"),
    (["--param", "source"], "expected KEY=VALUE"),
    (["--pipeline", "benchmark", "--param", "dataset_uri=s3://b/d"], "needs checkpoint_uri"),
    (["--pipeline", "benchmark"], "needs --param dataset_uri"),
    (["--pipeline", "nightly"], "run `make compile`"),
    (["--pipeline-root", "/tmp/root"], "s3://bucket/prefix"),
])
def test_submit_refuses_bad_arguments_before_connecting(fake_kfp, capsys, argv, message):
    assert submit.main(argv) == 2
    assert message in capsys.readouterr().err
    assert fake_kfp.instances == []


def test_kfp_run_submit_is_the_same_command_as_run_create(fake_kfp):
    package = str(COMPILED / "pretrain_and_benchmark.yaml")
    calls = {}
    for verb in ("create", "submit"):
        FakeClient.instances = []
        result = CliRunner().invoke(kfp_cli.cli, ["--endpoint", "https://kfp.example", "--output", "json", "run",
                                                  verb, "-e", "ssl-lib", "-r", "mocov2", "-f", package,
                                                  "knn_ks=[10,20]", "launcher=pytorchjob"], obj={})
        assert result.exit_code == 0, result.output
        calls[verb] = recorded(fake_kfp).calls
    assert calls["submit"] == calls["create"]
    run = dict(calls["create"])["run_pipeline"]
    assert run["params"] == {"knn_ks": [10, 20], "launcher": "pytorchjob"} and run["pipeline_package_path"] == package


@pytest.mark.parametrize("cron", ["0 2 * * *", "*/5 * * * *"])
def test_a_five_field_cron_is_refused_with_its_six_field_form(fake_kfp, capsys, cron):
    assert schedule.main(["--cron", cron, "--param", "dataset_uri=s3://b/d", "--param", "checkpoint_uri=s3://b/c"]) == 2
    err = capsys.readouterr().err
    assert repr(cron) in err and f"'0 {cron}'" in err and "seconds first" in err
    assert fake_kfp.instances == []


@pytest.mark.parametrize("cron", ["@daily", "0 0 2 * * * 2030", ""])
def test_other_non_six_field_crons_are_refused(cron):
    with pytest.raises(ValueError, match="needs 6"):
        schedule.check_cron(cron)


def test_schedule_creates_one_nightly_run_without_overlap_catchup_or_cache(fake_kfp):
    rc = schedule.main(["--param", "dataset_uri=s3://ssl-lib/datasets/fmnist",
                        "--param", "checkpoint_uri=s3://ssl-lib/work/latest/checkpoint.pth"])
    assert rc == 0
    calls = dict(recorded(fake_kfp).calls)
    assert calls["create_experiment"]["name"] == "ssl-lib-nightly"
    run = calls["create_recurring_run"]
    assert run["cron_expression"] == schedule.DEFAULT_CRON == "0 0 2 * * *"
    assert (run["max_concurrency"], run["no_catchup"], run["enable_caching"]) == (1, True, False)
    assert run["pipeline_package_path"] == str(COMPILED / "benchmark.yaml")
    assert run["params"] == {"dataset_uri": "s3://ssl-lib/datasets/fmnist",
                             "checkpoint_uri": "s3://ssl-lib/work/latest/checkpoint.pth"}
    assert run["experiment_id"] == "exp-1" and run["job_name"] == schedule.DEFAULT_NAME
    assert FAKE_SECRET not in repr(run) and FAKE_KEY_ID not in repr(run)


def test_schedule_does_not_double_an_existing_nightly_run_unless_asked(fake_kfp, capsys):
    fake_kfp.existing = [schedule.DEFAULT_NAME]
    argv = ["--param", "dataset_uri=s3://b/d", "--param", "backbone_uri=s3://b/w"]
    assert schedule.main(argv) == 2
    assert "--replace" in capsys.readouterr().err
    assert "create_recurring_run" not in dict(fake_kfp.instances[-1].calls)
    assert schedule.main(argv + ["--replace"]) == 0
    names = [c for c, _ in fake_kfp.instances[-1].calls]
    assert names == ["create_experiment", "delete_recurring_run", "create_recurring_run"]


# ---- single-stage reruns: which stages a change makes KFP compute again -------------------------

@pytest.fixture(scope="module")
def full_pipeline():
    return cache_keys.load("pretrain_and_benchmark")


def rerun(spec, change, base=None):
    before = cache_keys.fingerprints(spec, base)
    after = cache_keys.fingerprints(spec, {**(base or {}), **change})
    return sorted(t for t in before if before[t] != after[t])


def test_the_same_arguments_give_the_same_keys(full_pipeline):
    defaults = {"source": "fashion-mnist", "knn_ks": [10.0, 20.0, 100.0, 200.0], "nproc": 1}
    assert cache_keys.fingerprints(full_pipeline, defaults) == cache_keys.fingerprints(full_pipeline)
    assert rerun(full_pipeline, {"knn_ks": [10, 20, 100, 200]}) == []


BENCHMARK_STAGES = ["detection", "fast-linear", "features", "features-2", "finetune", "knn", "linear", "low-shot-svm",
                    "report", "segmentation", "semi", "svm"]


@pytest.mark.parametrize("change", [{"config": "selfsup/mocov2/other.py"}, {"cfg_options": ["runner.max_epochs=1"]},
                                    {"launcher": "pytorchjob"}, {"num_workers": 2}, {"gpus_per_worker": 8}])
def test_a_pretrain_parameter_reruns_pretrain_and_what_follows_but_not_prep(full_pipeline, change):
    assert rerun(full_pipeline, change) == sorted(["extract", "pretrain"] + BENCHMARK_STAGES)


@pytest.mark.parametrize("change, stages", [
    ({"knn_ks": [10, 20]}, ["knn"]), ({"knn_gpus": 1}, ["knn"]),
    ({"low_shot_ks": [1, 96]}, ["low-shot-svm"]), ({"low_shot_samples": 3}, ["low-shot-svm"]),
    ({"linear_epochs": 90}, ["linear"]), ({"linear_config": "benchmarks/classification/other.py"}, ["linear"]),
    ({"semi_config": "benchmarks/classification/other.py"}, ["semi"]), ({"semi_epochs": 20}, ["semi"]), ({"semi_fractions": [0.01]}, ["semi"]),
    ({"finetune_config": "benchmarks/classification/other.py"}, ["finetune"]), ({"finetune_epochs": 100}, ["finetune"]),
    ({"finetune_train_limit": 500}, ["finetune"]), ({"finetune_baseline": True}, ["finetune"]),
    ({"eval_gpus": 1}, ["finetune", "linear", "semi"]),
    ({"detection_protocol": "coco"}, ["detection"]), ({"detection_iters": 100}, ["detection"]),
    ({"detection_config": "benchmarks/mmdetection/other.py"}, ["detection"]),
    ({"segmentation_protocol": "cityscapes"}, ["segmentation"]), ({"segmentation_iters": 100}, ["segmentation"]),
    ({"detseg_gpus": 1}, ["detection", "segmentation"]),
    ({"features_gpus": 1}, ["fast-linear", "features", "features-2", "knn", "low-shot-svm", "svm"]),
])
def test_a_protocols_parameter_reruns_only_that_protocol_and_the_report(full_pipeline, change, stages):
    assert rerun(full_pipeline, change) == sorted(stages + ["report"])


def test_switching_a_benchmark_off_or_on_reruns_only_that_stage_and_the_report(full_pipeline):
    everything = list(PROTOCOLS)
    without_semi = [p for p in everything if p != "semi"]
    assert rerun(full_pipeline, {"benchmarks": without_semi}) == ["plan-benchmarks", "report", "semi"]
    assert rerun(full_pipeline, {"benchmarks": everything}, {"benchmarks": without_semi}) == [
        "plan-benchmarks", "report", "semi"]
    # the last reader of a feature pass gone: the pass is skipped too
    assert rerun(full_pipeline, {"benchmarks": ["knn", "linear", "fast_linear", "semi", "finetune", "detection",
                                                "segmentation"]}) == [
        "features-2", "low-shot-svm", "plan-benchmarks", "report", "svm"]
    # neither detection nor segmentation: their data is not prepared either
    assert rerun(full_pipeline, {"benchmarks": ["knn", "svm", "low_shot_svm", "linear", "fast_linear", "semi",
                                                "finetune"]}) == [
        "detection", "plan-benchmarks", "prep-3", "report", "segmentation"]


@pytest.mark.parametrize("change", [{"detseg_source": "s3://ssl-lib/VOCdevkit"}, {"detseg_train_limit": 500},
                                    {"detseg_test_limit": 500}, {"detseg_mosaic_size": 64}])
def test_a_detseg_data_parameter_reruns_only_detection_and_segmentation(full_pipeline, change):
    assert rerun(full_pipeline, change) == ["detection", "prep-3", "report", "segmentation"]


@pytest.mark.parametrize("change", [{"voc_source": "s3://ssl-lib/VOC2007"}, {"voc_train_limit": 500},
                                    {"voc_mosaic_size": 64}])
def test_a_voc_data_parameter_reruns_only_the_svm_branch(full_pipeline, change):
    assert rerun(full_pipeline, change) == ["features-2", "low-shot-svm", "prep-2", "report", "svm"]


@pytest.mark.parametrize("change", [{"source": "s3://ssl-lib/raw/other"}, {"train_limit": 500}])
def test_a_data_parameter_reruns_everything_but_the_voc_data(full_pipeline, change):
    assert rerun(full_pipeline, change) == sorted(["extract", "prep", "pretrain"] + BENCHMARK_STAGES)


def test_a_new_training_image_digest_reruns_pretrain_and_what_follows(full_pipeline):
    before = cache_keys.fingerprints(full_pipeline)
    spec = yaml.safe_load(yaml.safe_dump(full_pipeline))
    spec["deploymentSpec"]["executors"]["exec-pretrain"]["container"]["image"] = f"reg/ssl-lib-cuda@{SHA}"
    after = cache_keys.fingerprints(spec)
    assert sorted(t for t in before if before[t] != after[t]) == sorted(["extract", "pretrain"] + BENCHMARK_STAGES)


def test_the_benchmark_pipeline_extracts_a_checkpoint_or_takes_weights_then_runs_every_benchmark():
    spec, _ = documents(COMPILED / "benchmark.yaml")
    stages = ["detection", "fast-linear", "features", "features-2", "finetune", "knn", "linear", "low-shot-svm",
              "plan-benchmarks", "prep-2", "report", "segmentation", "semi", "svm"]
    from_backbone = ["detection-2", "fast-linear-2", "features-3", "features-4", "finetune-2", "knn-2", "linear-2",
                     "low-shot-svm-2", "plan-benchmarks-2", "prep-3", "report-2", "segmentation-2", "semi-2", "svm-2"]
    assert sorted(t for t, _ in container_tasks(spec)) == sorted(
        ["prep"] + [f"condition-branches-1/condition-2/{t}" for t in ["extract"] + stages]
        + [f"condition-branches-1/condition-3/{t}" for t in from_backbone])
    from_checkpoint = spec["components"]["comp-condition-2"]["dag"]["tasks"]
    for task in ("features", "features-2", "linear", "semi", "finetune", "detection", "segmentation"):
        assert from_checkpoint[task]["inputs"]["artifacts"]["backbone"]["taskOutputArtifact"]["producerTask"] == "extract"
    for branch, report in (("comp-condition-2", "report"), ("comp-condition-3", "report-2")):
        assert "checkpoint" not in spec["components"][branch]["dag"]["tasks"][report]["inputs"]["artifacts"]
    importers = [label for label, e in spec["deploymentSpec"]["executors"].items() if "importer" in e]
    assert len(importers) == 3  # dataset, checkpoint, backbone
