"""No credential in what goes to a cluster: manifests/, images/, mk/ and compiled pipelines.

Credentials reach containers from a Kubernetes Secret (kfp-kubernetes use_secret_as_env, envFrom),
never as literal values in YAML, Dockerfiles or pipeline parameters. Placeholders (REPLACE_ME,
<...>, ${VAR}) and references (a Secret's name, the name of a key or env var) are fine.
"""
import base64
import binascii
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCANNED = ["manifests", "images", "mk", "pipelines/compiled"]

CREDENTIAL_NAME = re.compile(r"pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential", re.I)
PLACEHOLDER = re.compile(r"(|REPLACE_ME|CHANGE_ME|<[^<>]*>|\$\{?\w+\}?|\$\(\w+\)|\.\.\.)")
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")  # the name of an env var or Secret key: a reference
K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
REFERENCE_KEY = re.compile(r"(name|ref|env|envvar)$", re.I)  # secretName, secretRef, secret_env, ...
LEAKS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "MinIO default credentials": re.compile(r"\bminio(123|admin)\b", re.I),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "JSON web token": re.compile(r"\beyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}"),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]+@"),
}


def harmless(key: str, value) -> bool:
    """Whether `value` under `key` cannot be a credential."""
    if not isinstance(value, str) or not CREDENTIAL_NAME.search(key):
        return True
    value = value.strip()
    return bool(PLACEHOLDER.fullmatch(value) or ENV_NAME.fullmatch(value)
                or (REFERENCE_KEY.search(key) and K8S_NAME.fullmatch(value)))


def findings_in_tree(node, where="") -> list[str]:
    """Credential-looking values in a parsed YAML document."""
    found = []
    if isinstance(node, list):
        for i, item in enumerate(node):
            found += findings_in_tree(item, f"{where}[{i}]")
    elif isinstance(node, dict):
        if isinstance(node.get("name"), str) and "value" in node and not harmless(node["name"], node["value"]):
            found.append(f"{where}: env {node['name']} has a literal value")
        if node.get("kind") == "Secret" and isinstance(node.get("data"), dict):
            for k, v in node["data"].items():
                try:
                    decoded = base64.b64decode(str(v), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    decoded = str(v)
                if not harmless(k, decoded):
                    found.append(f"{where}.data.{k}: a Secret holds a real-looking value")
        for key, value in node.items():
            key = str(key)
            if key == "parameters" and isinstance(value, dict):
                found += [f"{where}.parameters.{p}: a credential as a pipeline parameter" for p in value
                          if CREDENTIAL_NAME.search(str(p)) and not REFERENCE_KEY.search(str(p))]
            if not harmless(key, value):
                found.append(f"{where}.{key}: a literal credential")
            found += findings_in_tree(value, f"{where}.{key}")
    return found


def findings_in_text(text: str, suffix: str) -> list[str]:
    found = [f"{what}" for what, pattern in LEAKS.items() if pattern.search(text)]
    if suffix in (".yaml", ".yml"):
        try:
            for i, doc in enumerate(yaml.safe_load_all(text)):
                found += findings_in_tree(doc, f"doc{i}")
        except yaml.YAMLError as e:
            found.append(f"does not parse as YAML: {e}")
    else:  # env files, Dockerfile ENV / ARG, make variables: KEY=VALUE
        for m in re.finditer(r"^\s*(?:ENV\s+|ARG\s+|export\s+)?([A-Za-z_][\w.-]*)\s*[:?]?=\s*(\S*)", text, re.M):
            if not harmless(m.group(1), m.group(2).strip("'\"")):
                found.append(f"{m.group(1)}= has a literal value")
    return found


def scanned_files() -> list[Path]:
    """Files under SCANNED that git would commit (a git-ignored local credentials file is not)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *SCANNED],
                         cwd=REPO, capture_output=True, text=True)
    if out.returncode == 0:
        return sorted(REPO / p for p in set(out.stdout.splitlines()) if (REPO / p).is_file())
    return sorted(p for d in SCANNED if (REPO / d).is_dir() for p in (REPO / d).rglob("*") if p.is_file())


def test_nothing_that_goes_to_a_cluster_holds_a_credential():
    files = scanned_files()
    assert any(p.parent.name == "manifests" for p in files), "manifests/ not found by the scan"
    assert {p.name for p in files if p.parent.name == "compiled"} >= {"pretrain_and_benchmark.yaml", "benchmark.yaml"}, \
        "compiled pipelines not found by the scan: run `make golden`"
    problems = {str(p.relative_to(REPO)): f for p in files
                if (f := findings_in_text(p.read_text(errors="replace"), p.suffix))}
    assert problems == {}


FAKE_KEY_ID = "AKIA" + "QX7TESTONLY0000Z"[:16]
FAKE_SECRET = "Zx" + "9kQ2mWv7Lp4Rt8Yb3Nc6Hd1Fg5Js0Ua2Ie7Ko4Xw"


@pytest.mark.parametrize("suffix,text", [
    (".yaml", "apiVersion: v1\nkind: Secret\nstringData:\n  AWS_SECRET_ACCESS_KEY: " + FAKE_SECRET + "\n"),
    (".yaml", "kind: Secret\ndata:\n  password: " + base64.b64encode(b"hunter2").decode() + "\n"),
    (".yaml", "env:\n- name: AWS_SECRET_ACCESS_KEY\n  value: " + FAKE_SECRET + "\n"),
    (".yaml", "root:\n  inputDefinitions:\n    parameters:\n      aws_secret_access_key: {parameterType: STRING}\n"),
    (".yaml", "endpoint: http://admin:" + "s3cr3t@minio:9000\n"),
    (".yaml", "accessKey: " + FAKE_KEY_ID + "\n"),
    ("", "AWS_SECRET_ACCESS_KEY=" + FAKE_SECRET + "\n"),
    ("", "ENV HF_TOKEN=" + FAKE_SECRET + "\n"),
    ("", "-----BEGIN RSA " + "PRIVATE KEY-----\n"),
])
def test_the_scan_catches_planted_credentials(suffix, text):
    assert findings_in_text(text, suffix)


@pytest.mark.parametrize("suffix,text", [
    (".yaml", "kind: Secret\nstringData:\n  AWS_SECRET_ACCESS_KEY: REPLACE_ME\n  AWS_REGION: us-east-1\n"),
    (".yaml", "secretAsEnv:\n- secretName: ssl-lib-object-storage\n  keyToEnv:\n"
              "  - {secretKey: AWS_SECRET_ACCESS_KEY, envVar: AWS_SECRET_ACCESS_KEY}\n"),
    (".yaml", "credentials:\n  secretRef: {secretName: ssl-lib-object-storage, secretKeyKey: AWS_SECRET_ACCESS_KEY}\n"),
    (".yaml", "inputDefinitions:\n  parameters:\n    secret_env: {parameterType: STRING, defaultValue: ''}\n"),
    ("", "AWS_SECRET_ACCESS_KEY=REPLACE_ME\nAWS_ENDPOINT_URL=http://minio-service.kubeflow:9000\n"),
])
def test_the_scan_lets_placeholders_and_references_through(suffix, text):
    assert findings_in_text(text, suffix) == []
