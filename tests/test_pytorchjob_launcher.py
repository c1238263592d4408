"""The PyTorchJob launcher against a fake Kubernetes API that records every request."""
import http.server
import json
import os
import re
import signal
import threading
import urllib.parse

import pytest
from kubernetes.client import ApiException, Configuration
from torch.distributed.run import get_args_parser

from ssl_lib.engine.pytorchjob import KubeflowTrainingAPI, job_name, pytorchjob_body, run_pytorchjob
from ssl_lib.errors import LaunchError, SSLError

COMMAND = ["python", "-m", "ssl_lib.engine.train", "--config", "c.py", "--dataset", "s3://b/d", "--work-dir", "s3://b/w"]


def condition(kind, message=""):
    return {"type": kind, "status": "True", "message": message}


class FakeAPI:
    """Jobs in a dict; `states` is the sequence of conditions successive get() calls report."""

    def __init__(self, states=("Running", "Succeeded"), existing=None, log=(), on_get=None):
        self.calls, self.jobs, self.states, self.log, self.on_get = [], dict(existing or {}), list(states), log, on_get

    def create(self, namespace, body):
        name = body["metadata"]["name"]
        self.calls.append(("create", namespace, name))
        if name in self.jobs:
            raise ApiException(status=409, reason="AlreadyExists")
        self.jobs[name] = dict(body, status={"conditions": [condition("Created")]})
        return self.jobs[name]

    def get(self, namespace, name):
        self.calls.append(("get", namespace, name))
        if self.on_get:
            self.on_get(len([c for c in self.calls if c[0] == "get"]))
        if name not in self.jobs:
            raise ApiException(status=404, reason="NotFound")
        if self.states:
            kind = self.states.pop(0)
            self.jobs[name]["status"] = {"conditions": [condition("Created"), condition(*kind.split(":", 1))]}
        return self.jobs[name]

    def delete(self, namespace, name):
        self.calls.append(("delete", namespace, name))
        if self.jobs.pop(name, None) is None:
            raise ApiException(status=404, reason="NotFound")

    def master_log(self, namespace, name):
        self.calls.append(("master_log", namespace, name))
        yield from self.log

    def count(self, verb):
        return sum(1 for c in self.calls if c[0] == verb)


def launch(api, **kw):
    args = dict(name="pretrain-abc", namespace="ns", image="reg/ssl-lib-cuda:0.1.0", command=COMMAND,
                poll_interval=0, api=api)
    return run_pytorchjob(**{**args, **kw})


def test_creates_the_job_once_and_returns_when_it_succeeds():
    api = FakeAPI()
    out = launch(api)
    assert out == dict(job_name="pretrain-abc", namespace="ns", status="Succeeded", reattached=False)
    assert api.count("create") == 1 and api.count("delete") == 0


def test_a_retried_step_reattaches_to_the_running_job_instead_of_starting_a_second():
    api = FakeAPI(states=["Running", "Succeeded", "Running", "Succeeded"])
    launch(api)
    api.states = ["Running", "Running", "Succeeded"]
    out = launch(api)
    assert out["reattached"] is True
    assert len(api.jobs) == 1 and api.count("delete") == 0


def test_a_job_left_failed_by_an_earlier_try_is_replaced_not_reattached():
    body = pytorchjob_body(name="pretrain-abc", namespace="ns", image="i", command=COMMAND)
    api = FakeAPI(existing={"pretrain-abc": dict(body, status={"conditions": [condition("Failed", "OOM")]})},
                  states=["Running", "Succeeded"])
    api.states.insert(0, "Failed:OOM")
    out = launch(api)
    assert out["reattached"] is False
    assert [c[0] for c in api.calls if c[0] in ("create", "delete")] == ["create", "delete", "create"]


def test_a_failed_job_fails_the_step_with_its_name_and_message():
    api = FakeAPI(states=["Running", "Failed:worker-1 exited with code 137 (OOMKilled)"])
    with pytest.raises(LaunchError, match=r"ns/pretrain-abc failed: worker-1 exited with code 137") as e:
        launch(api)
    assert isinstance(e.value, SSLError)
    assert api.count("delete") == 0, "a failed job is kept for kubectl describe / logs"


def test_timeout_fails_the_step_and_deletes_the_job():
    api = FakeAPI(states=["Running"] * 1000)
    with pytest.raises(LaunchError, match="wait_timeout=0s; deleted the job"):
        launch(api, wait_timeout=0)
    assert api.count("delete") == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cancelling_the_run_deletes_the_job_and_exits_non_zero(sig):
    before = signal.getsignal(sig)
    api = FakeAPI(states=["Running"] * 1000, on_get=lambda n: n == 3 and os.kill(os.getpid(), sig))
    with pytest.raises(LaunchError, match=f"cancelled by {sig.name}; deleted the job"):
        launch(api)
    assert api.count("delete") == 1 and not api.jobs
    assert signal.getsignal(sig) is before


def test_other_api_errors_on_create_fail_the_step():
    class Forbidden(FakeAPI):
        def create(self, namespace, body):
            raise ApiException(status=403, reason="Forbidden: cannot create pytorchjobs")

    with pytest.raises(LaunchError, match="cannot create PyTorchJob ns/pretrain-abc"):
        launch(Forbidden())


def test_the_master_log_is_streamed_and_its_absence_does_not_fail_the_step(capsys):
    launch(FakeAPI(log=["epoch 1 loss 6.9", "epoch 2 loss 6.1"]))
    out = capsys.readouterr().out
    assert "[pretrain-abc-master-0] epoch 1 loss 6.9" in out and "epoch 2 loss 6.1" in out

    class NoLogs(FakeAPI):
        def master_log(self, namespace, name):
            raise ApiException(status=403, reason="pods/log forbidden")

    assert launch(NoLogs())["status"] == "Succeeded"
    assert "master log unavailable" in capsys.readouterr().out


def test_job_names_are_deterministic_dns_labels():
    assert job_name("pretrain-0123456789abcdef") == "pretrain-0123456789abcdef"
    long = "Pretrain_MoCo v2/" + "x" * 80
    assert job_name(long) == job_name(long) and len(job_name(long)) <= 40
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", job_name(long))
    assert job_name("a_b") != job_name("a.b")


def replica_env(body, rtype, index):
    """The env the operator gives replica `index` of `rtype` (training-operator v1.9 setPodEnv)."""
    spec = body["spec"]
    nodes = sum(r["replicas"] for r in spec["pytorchReplicaSpecs"].values())
    rank = index + (1 if rtype == "Worker" else 0)
    container = spec["pytorchReplicaSpecs"][rtype]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    env.update(MASTER_ADDR=f"{body['metadata']['name']}-master-0", MASTER_PORT="23456",
               WORLD_SIZE=str(nodes * int(spec["nprocPerNode"])), RANK=str(rank), PET_NNODES=str(nodes))
    command = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in container["command"]]
    return env, command, container


def test_multi_gpu_workers_run_the_command_under_torchrun_with_their_node_rank():
    body = pytorchjob_body(name="pretrain-abc", namespace="ns", image="i", command=COMMAND, num_workers=3,
                           gpus_per_worker=4)
    assert body["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] == 1
    assert body["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    env, command, container = replica_env(body, "Worker", 1)
    assert command[0] == "torchrun"
    args = get_args_parser().parse_args(command[1:])
    assert (args.nnodes, args.nproc_per_node, args.node_rank) == ("3", "4", 2)
    assert (args.master_addr, args.master_port) == ("pretrain-abc-master-0", 23456)
    assert args.no_python and [args.training_script, *args.training_script_args] == COMMAND
    assert env["NCCL_DEBUG"] == "WARN" and env["SSL_DIST_BACKEND"] == "nccl"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4


def test_single_process_workers_run_the_command_as_is_with_operator_rank_and_world_size():
    body = pytorchjob_body(name="p", namespace="ns", image="i", command=COMMAND, num_workers=2, gpus_per_worker=1)
    env, command, _ = replica_env(body, "Worker", 0)
    assert command == COMMAND
    assert (env["WORLD_SIZE"], env["RANK"]) == ("2", "1")


def test_cpu_clusters_get_no_gpu_limit_and_gloo():
    body = pytorchjob_body(name="p", namespace="ns", image="i", command=COMMAND, gpus_per_worker=0)
    env, command, container = replica_env(body, "Master", 0)
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert env["SSL_DIST_BACKEND"] == "gloo" and command == COMMAND
    assert "Worker" not in body["spec"]["pytorchReplicaSpecs"]


def test_pod_spec_has_shm_a_shard_cache_no_istio_secret_env_and_scheduling_parameters():
    body = pytorchjob_body(name="p", namespace="ns", image="reg/img:1", command=COMMAND, num_workers=2,
                           cpu="8", memory="60Gi", node_selector={"gpu": "h100"}, env={"NCCL_DEBUG": "INFO"},
                           secret_env="ssl-lib-object-storage", shm_size="32Gi", service_account="trainer",
                           data_cache_size="500Gi")
    for replica in body["spec"]["pytorchReplicaSpecs"].values():
        assert replica["restartPolicy"] == "OnFailure"
        template = replica["template"]
        assert template["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
        pod = template["spec"]
        assert pod["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "32Gi"}},
                                  {"name": "data-cache", "emptyDir": {"sizeLimit": "500Gi"}}]
        assert pod["nodeSelector"] == {"gpu": "h100"} and pod["serviceAccountName"] == "trainer"
        (c,) = pod["containers"]
        assert c["name"] == "pytorch" and c["image"] == "reg/img:1"
        assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
        assert {"name": "data-cache", "mountPath": "/data-cache"} in c["volumeMounts"]
        assert {"name": "SSL_DATA_CACHE", "value": "/data-cache"} in c["env"]
        assert c["envFrom"] == [{"secretRef": {"name": "ssl-lib-object-storage"}}]
        assert {"name": "NCCL_DEBUG", "value": "INFO"} in c["env"]
        assert c["resources"]["requests"] == {"cpu": "8", "memory": "60Gi"}
        assert not any("SECRET" in e["name"] or "ACCESS_KEY" in e["name"] for e in c["env"])
    assert body["spec"]["runPolicy"]["backoffLimit"] >= 1


def test_an_empty_image_is_refused_with_the_fix():
    with pytest.raises(LaunchError, match="TRAINING_IMAGE"):
        pytorchjob_body(name="p", namespace="ns", image="", command=COMMAND)


class FakeApiServer(http.server.BaseHTTPRequestHandler):
    """A Kubernetes API server on loopback: just enough for the default adapter's calls."""
    requests, jobs = [], set()

    def reply(self, code, payload, content_type="application/json"):
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(("POST", self.path))
        name = body["metadata"]["name"]
        if name in self.jobs:
            return self.reply(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
        self.jobs.add(name)
        self.reply(201, body)

    def do_GET(self):
        self.requests.append(("GET", self.path))
        if "/pytorchjobs/" in self.path:
            return self.reply(200, {"metadata": {"name": "pretrain-abc"},
                                    "status": {"conditions": [condition("Succeeded")]}})
        if self.path.startswith("/api/v1/namespaces/ns/pods?"):
            return self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
                {"metadata": {"name": "pretrain-abc-master-0"}, "status": {"phase": "Succeeded"}}]})
        if self.path.startswith("/api/v1/namespaces/ns/pods/pretrain-abc-master-0/log?"):
            return self.reply(200, "epoch 1 loss 6.9\nepoch 2 loss 6.1\n", "text/plain")
        self.reply(404, {"kind": "Status", "code": 404})

    def do_DELETE(self):
        self.requests.append(("DELETE", self.path))
        self.reply(200, {"kind": "Status", "status": "Success"})

    def log_message(self, *args):
        pass


def test_the_default_adapter_speaks_the_kubernetes_api_through_the_training_sdk(capsys):
    FakeApiServer.requests, FakeApiServer.jobs = [], set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
        api = KubeflowTrainingAPI("ns", client_configuration=config)
        first = run_pytorchjob(name="pretrain-abc", namespace="ns", image="i", command=COMMAND, poll_interval=0,
                               api=api)
        again = run_pytorchjob(name="pretrain-abc", namespace="ns", image="i", command=COMMAND, poll_interval=0,
                               api=api)
        api.delete("ns", "pretrain-abc")
    finally:
        server.shutdown()
    assert (first["reattached"], again["reattached"]) == (False, True)
    paths = [(m, urllib.parse.unquote(p)) for m, p in FakeApiServer.requests]
    assert paths.count(("POST", "/apis/kubeflow.org/v1/namespaces/ns/pytorchjobs")) == 2
    assert ("GET", "/apis/kubeflow.org/v1/namespaces/ns/pytorchjobs/pretrain-abc") in paths
    assert any(m == "GET" and "training.kubeflow.org/replica-type=master" in p for m, p in paths)
    assert any(m == "GET" and "/log?" in p and "container=pytorch" in p and "follow=True" in p for m, p in paths)
    assert any(m == "DELETE" and p.startswith("/apis/kubeflow.org/v1/namespaces/ns/pytorchjobs/pretrain-abc")
               and "propagationPolicy=Background" in p for m, p in paths)
    assert "[pretrain-abc-master-0] epoch 2 loss 6.1" in capsys.readouterr().out
