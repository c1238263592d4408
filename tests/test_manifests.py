"""Cluster artifacts, checked offline: manifests/ and the launcher's PyTorchJob name only real fields.

Core kinds go through `kubernetes-validate --strict`; the PyTorchJob through the training-operator
v1.9 CRD's openAPIV3Schema at <repo>/../shared/schemas/, with every object that does not preserve
unknown fields closed, so that a misspelt field fails as the API server would prune or reject it.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.images import DEFAULT_REGISTRY, FAMILIES, image
from ssl_lib import __version__
from ssl_lib.engine.pytorchjob import pytorchjob_body

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"
CRD = REPO.parent / "shared" / "schemas" / "kubeflow.org_pytorchjobs.yaml"
K8S_VERSION = "1.37.0"
# the arguments that produce manifests/pytorchjob.yaml
TEMPLATE = dict(
    name="mocov2-resnet50-in1k", namespace="kubeflow-user-example-com", image=image("cuda", DEFAULT_REGISTRY),
    command=["python", "-m", "ssl_lib.engine.train", "--config", "mocov2_resnet50_8xb32-coslr-200e_in1k.py",
             "--dataset", "s3://ssl-lib/datasets/imagenet",
             "--work-dir", "s3://ssl-lib/work/mocov2_resnet50_8xb32-coslr-200e_in1k"],
    num_workers=2, gpus_per_worker=4, cpu="16", memory="96Gi", node_selector={"nvidia.com/gpu.present": "true"},
    secret_env="ssl-lib-object-storage", shm_size="16Gi")
METADATA = {"type": "object", "additionalProperties": False, "required": ["name"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                           "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                           "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}}


def closed(schema):
    """The schema with additionalProperties: false on every object that lists its properties and
    does not carry x-kubernetes-preserve-unknown-fields."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) if k in ("properties", "items", "additionalProperties", "anyOf", "allOf", "oneOf")
           else v for k, v in schema.items()}
    if "properties" in schema and isinstance(schema["properties"], dict):
        out["properties"] = {k: closed(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def pytorchjob_validator():
    assert CRD.is_file(), f"training-operator v1.9 CRD not found at {CRD} (shared/schemas beside the repo)"
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = closed(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = METADATA
    return jsonschema.Draft7Validator(schema)


def errors_of(validator, doc):
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def load_all(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def env_file(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def kustomization():
    return yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())


def core_objects():
    """The core-kind objects of the kustomization, the generated Secret built from the env template."""
    k = kustomization()
    docs = [d for r in k["resources"] for d in load_all(MANIFESTS / r)]
    for gen in k["secretGenerator"]:
        data = {}
        for env in gen["envs"]:
            data.update(env_file(MANIFESTS / (env + ".example")))
        docs.append({"apiVersion": "v1", "kind": "Secret", "type": gen["type"],
                     "metadata": {"name": gen["name"]}, "stringData": data})
    return [{**d, "metadata": {**d["metadata"], "namespace": k["namespace"]}} for d in docs]


def test_pytorchjob_template_validates_against_the_v1_9_crd(pytorchjob_validator):
    (job,) = load_all(MANIFESTS / "pytorchjob.yaml")
    assert errors_of(pytorchjob_validator, job) == []


def test_pytorchjob_template_is_the_body_the_launcher_creates():
    (job,) = load_all(MANIFESTS / "pytorchjob.yaml")
    assert job == pytorchjob_body(**TEMPLATE), "regenerate manifests/pytorchjob.yaml from pytorchjob_body(**TEMPLATE)"


@pytest.mark.parametrize("workers,gpus", [(1, 0), (1, 1), (3, 1), (2, 8)])
def test_launcher_bodies_validate_against_the_v1_9_crd(pytorchjob_validator, workers, gpus):
    body = pytorchjob_body(name="pretrain-0123456789abcdef", namespace="ns", image="img:1", num_workers=workers,
                           gpus_per_worker=gpus, command=["python", "-m", "ssl_lib.engine.train"],
                           node_selector={"pool": "gpu"}, env={"SSL_X": "1"}, secret_env="creds",
                           service_account="trainer")
    assert errors_of(pytorchjob_validator, body) == []


@pytest.mark.parametrize("where,field", [
    ("spec", "nprocsPerNode"),
    ("spec.runPolicy", "backofLimit"),
    ("spec.pytorchReplicaSpecs.Master.template.spec", "nodeSelektor"),
    ("spec.pytorchReplicaSpecs.Master.template.spec.containers.0", "envForm"),
    ("metadata", "label"),
])
def test_a_misspelt_pytorchjob_field_fails_the_closed_schema(pytorchjob_validator, where, field):
    job = copy.deepcopy(pytorchjob_body(**TEMPLATE))
    node = job
    for key in where.split("."):
        node = node[int(key)] if key.isdigit() else node[key]
    node[field] = "x"
    assert any(field in e for e in errors_of(pytorchjob_validator, job))


def test_core_manifests_pass_kubernetes_validate_strict():
    objects = core_objects()
    assert {o["kind"] for o in objects} == {"Role", "RoleBinding", "ConfigMap", "Secret"}
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_strict_validation_rejects_a_misspelt_core_field():
    role = next(o for o in core_objects() if o["kind"] == "Role")
    role["rules"][0]["verb"] = ["get"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(role, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_pytorchjob_template():
    k = kustomization()
    listed = set(k["resources"]) | {e + ".example" for g in k["secretGenerator"] for e in g["envs"]}
    present = {p.name for p in MANIFESTS.iterdir()} - {"kustomization.yaml", "pytorchjob.yaml", "object-storage.env"}
    assert listed == present


def test_kustomization_renders_and_every_object_passes_strict_validation(tmp_path):
    shutil.copytree(MANIFESTS, tmp_path / "m", ignore=shutil.ignore_patterns("object-storage.env"))
    shutil.copy(tmp_path / "m" / "object-storage.env.example", tmp_path / "m" / "object-storage.env")
    kubectl = shutil.which("kubectl") or str(Path(sys.executable).with_name("kubectl"))  # see the Makefile
    out = subprocess.run([kubectl, "kustomize", str(tmp_path / "m")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert sorted(d["kind"] for d in rendered) == ["ConfigMap", "Role", "RoleBinding", "Secret"]
    for obj in rendered:
        assert obj["metadata"]["namespace"] == kustomization()["namespace"]
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_kfp_launcher_points_the_pipeline_root_at_the_bucket_with_the_secret():
    (cm,) = load_all(MANIFESTS / "kfp-launcher-configmap.yaml")
    assert cm["metadata"]["name"] == "kfp-launcher"
    assert re.match(r"(s3|minio)://[a-z0-9.-]+/", cm["data"]["defaultPipelineRoot"])
    ref = yaml.safe_load(cm["data"]["providers"])["s3"]["default"]["credentials"]["secretRef"]
    (gen,) = kustomization()["secretGenerator"]
    keys = env_file(MANIFESTS / (gen["envs"][0] + ".example"))
    assert ref["secretName"] == gen["name"] == TEMPLATE["secret_env"]
    assert {ref["accessKeyKey"], ref["secretKeyKey"]} <= set(keys)


def test_rbac_lets_the_pipeline_account_create_watch_delete_pytorchjobs_and_read_logs():
    role = next(o for o in core_objects() if o["kind"] == "Role")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}
    for verb in ("create", "get", "list", "watch", "delete"):
        assert ("kubeflow.org", "pytorchjobs", verb) in granted
    for resource in ("pods", "pods/log"):
        assert ("", resource, "get") in granted
    binding = next(o for o in core_objects() if o["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_image_family_has_a_pinned_nonroot_dockerfile(family):
    text = (REPO / FAMILIES[family][1]).read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{family}: the image must end as a non-root USER"
    for base in re.findall(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M):
        assert re.search(r":\d+\.\d+\.\d+-", base), f"{family}: pin the base image's patch version, not {base}"
    assert not re.search(r"^(ENV|ARG)\s.*(PASSWORD|SECRET|TOKEN|ACCESS_KEY)", text, re.M | re.I)


def test_images_carry_the_package_version_and_take_the_registry_from_the_environment():
    env = {k: v for k, v in os.environ.items() if k != "SSL_LIB_IMAGE_REGISTRY"}
    run = lambda e: subprocess.run([sys.executable, "-m", "components.images"], cwd=REPO, env=e,  # noqa: E731
                                   capture_output=True, text=True, check=True).stdout.split("\n")
    default = run(env)[0].split()
    assert default == ["cpu", f"{DEFAULT_REGISTRY}/ssl-lib-cpu:{__version__}", "images/cpu/Dockerfile"]
    moved = run({**env, "SSL_LIB_IMAGE_REGISTRY": "registry.example:5000/team"})[0].split()
    assert moved[1] == f"registry.example:5000/team/ssl-lib-cpu:{__version__}"


FAKE_DOCKER = """#!/bin/sh
# Records each call; `inspect` answers with a RepoDigests entry for the image it is asked about.
echo "$*" >> "$DOCKER_LOG"
if [ "$1" = inspect ]; then
  for last; do :; done
  echo "${last%:*}@sha256:$(printf %s "$last" | sha256sum | cut -d' ' -f1)"
fi
"""


def test_make_images_builds_every_family_in_order_and_push_records_each_digest(tmp_path):
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    registry = "registry.example:5000/team"
    env = dict(os.environ, DOCKER_LOG=str(tmp_path / "calls"), SSL_LIB_IMAGE_REGISTRY=registry,
               SSL_LIB_IMAGE_DIGESTS=str(tmp_path / "digests.json"))
    subprocess.run(["make", "-s", "images", "images-push", f"DOCKER={docker}", f"PY={sys.executable}"], cwd=REPO,
                   env=env, check=True, capture_output=True, text=True, timeout=120)
    calls = (tmp_path / "calls").read_text().splitlines()
    tags = {f: f"{registry}/{FAMILIES[f][0]}:{__version__}" for f in FAMILIES}
    builds = [c.split() for c in calls if c.startswith("build ")]
    assert builds == [["build", "-f", FAMILIES["cpu"][1], "-t", tags["cpu"], "."],
                      ["build", "-f", FAMILIES["cuda"][1], "-t", tags["cuda"], "."],
                      # bench is built FROM the training image
                      ["build", "-f", FAMILIES["bench"][1], "--build-arg", f"TRAINING_IMAGE={tags['cuda']}",
                       "-t", tags["bench"], "."],
                      ["build", "-f", FAMILIES["detseg"][1], "--build-arg", f"TRAINING_IMAGE={tags['cuda']}",
                       "-t", tags["detseg"], "."]]
    assert [c for c in calls if c.startswith("push ")] == [f"push {tags[f]}" for f in FAMILIES]
    digests = json.loads((tmp_path / "digests.json").read_text())
    assert {f: e["image"] for f, e in digests.items()} == tags
    pinned = subprocess.run([sys.executable, "-c", "from components.images import TRAINING_IMAGE; print(TRAINING_IMAGE)"],
                            cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert pinned == f"{registry}/ssl-lib-cuda@{digests['cuda']['digest']}"
