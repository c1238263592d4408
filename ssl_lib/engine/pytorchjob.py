"""Run the training entry point as a Kubeflow PyTorchJob (training-operator v1.9) and await it.

The job is named from `name`, so a retried pipeline step re-attaches to the job it started before
(409 AlreadyExists) instead of starting a second one; a job that an earlier try left Failed is
replaced, and the new one resumes from the newest checkpoint in its work dir. SIGTERM / SIGINT (a
cancelled KFP run) deletes the job. The master's log is streamed to stdout, best effort.
"""
from __future__ import annotations

import copy
import hashlib
import re
import signal
import threading
import time

from ..errors import LaunchError

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "pytorchjobs"
CONTAINER = "pytorch"  # the operator injects MASTER_ADDR, RANK, ... into the container of this name
PORT_NAME, PORT = "pytorchjob-port", 23456
MASTER_SELECTOR = "training.kubeflow.org/job-name={},training.kubeflow.org/replica-type=master"
NO_ISTIO = {"sidecar.istio.io/inject": "false"}


class KubeflowTrainingAPI:
    """The default `api`: the kubeflow-training SDK's TrainingClient for auth (in-cluster or kube-config)
    and its Kubernetes clients for the calls. Its create_job/get_job take SDK model objects and wrap
    ApiException in RuntimeError, which hides the 409 that re-attaching needs, so bodies go as dicts."""

    def __init__(self, namespace: str, client_configuration=None):
        from kubeflow.training import TrainingClient

        self.client = TrainingClient(namespace=namespace, client_configuration=client_configuration)

    def create(self, namespace: str, body: dict) -> dict:
        return self.client.custom_api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def get(self, namespace: str, name: str) -> dict:
        return self.client.custom_api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def delete(self, namespace: str, name: str) -> None:
        self.client.custom_api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                               propagation_policy="Background")

    def master_log(self, namespace: str, name: str):
        """Lines of the master's log as they come; nothing while its pod is not started."""
        from kubernetes import watch

        core = self.client.core_api
        pods = core.list_namespaced_pod(namespace, label_selector=MASTER_SELECTOR.format(name)).items
        started = [p for p in pods if p.status and p.status.phase not in (None, "Pending")]
        if started:
            yield from watch.Watch().stream(core.read_namespaced_pod_log, name=started[0].metadata.name,
                                            namespace=namespace, container=CONTAINER, follow=True)


def job_name(name: str) -> str:
    """A DNS-1035 job name, the same for the same `name`; short enough for `<job>-worker-<i>` pods."""
    clean = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not clean[:1].isalpha():
        clean = "job-" + clean
    if clean == name and len(name) <= 40:
        return name
    return f"{clean[:31].rstrip('-')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def pytorchjob_body(*, name: str, namespace: str, image: str, command: list[str], num_workers: int = 1,
                    gpus_per_worker: int = 1, cpu: str = "4", memory: str = "32Gi",
                    node_selector: dict[str, str] | None = None, env: dict[str, str] | None = None,
                    secret_env: str | None = None, shm_size: str = "16Gi", service_account: str | None = None,
                    backoff_limit: int = 3) -> dict:
    """The PyTorchJob: replica 0 is the Master, the other num_workers - 1 are Workers, G GPUs each."""
    if not image:
        raise LaunchError("pytorchjob launcher: no image given; pass the training image "
                          "(components.images.TRAINING_IMAGE)")
    if num_workers < 1 or gpus_per_worker < 0:
        raise LaunchError(f"pytorchjob launcher: num_workers={num_workers} must be >= 1 and "
                          f"gpus_per_worker={gpus_per_worker} >= 0")
    if gpus_per_worker > 1:  # one process per GPU; the operator's RANK is the node rank here
        command = ["torchrun", f"--nnodes={num_workers}", f"--nproc_per_node={gpus_per_worker}",
                   "--node_rank=$(RANK)", "--master_addr=$(MASTER_ADDR)", "--master_port=$(MASTER_PORT)",
                   "--no-python", *command]
    variables = {"NCCL_DEBUG": "WARN", "SSL_DIST_BACKEND": "nccl" if gpus_per_worker else "gloo", **(env or {})}
    limits = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": gpus_per_worker} if gpus_per_worker else {})}
    container = {
        "name": CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent", "command": list(command),
        "env": [{"name": k, "value": str(v)} for k, v in variables.items()],
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": limits},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if secret_env:
        container["envFrom"] = [{"secretRef": {"name": secret_env}}]
    pod = {"containers": [container],
           "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}}]}
    if node_selector:
        pod["nodeSelector"] = dict(node_selector)
    if service_account:
        pod["serviceAccountName"] = service_account
    # Istio reads the annotation up to 1.x and prefers the label since; either keeps the sidecar out,
    # which would otherwise hold the pod Running after training ends and block the rendezvous.
    template = {"metadata": {"annotations": dict(NO_ISTIO), "labels": dict(NO_ISTIO)}, "spec": pod}
    replicas = {"Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": template}}
    if num_workers > 1:
        replicas["Worker"] = {"replicas": num_workers - 1, "restartPolicy": "OnFailure",
                              "template": copy.deepcopy(template)}
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "PyTorchJob",
        "metadata": {"name": job_name(name), "namespace": namespace,
                     "labels": {"app.kubernetes.io/part-of": "ssl-lib"}},
        "spec": {"nprocPerNode": str(max(gpus_per_worker, 1)),
                 "runPolicy": {"backoffLimit": backoff_limit, "cleanPodPolicy": "None"},
                 "pytorchReplicaSpecs": replicas},
    }


def job_state(job: dict) -> tuple[str, str]:
    """("Succeeded" | "Failed" | the latest condition | "Pending", its message) of a PyTorchJob."""
    conditions = (job.get("status") or {}).get("conditions") or []
    for final in ("Failed", "Succeeded"):
        for c in conditions:
            if c.get("type") == final and c.get("status") == "True":
                return final, c.get("message", "")
    latest = conditions[-1] if conditions else {}
    return latest.get("type", "Pending"), latest.get("message", "")


def _status(e: Exception):
    return getattr(e, "status", None)


def _delete(api, namespace: str, job: str) -> str:
    """Delete the job; say how that went, for the error message that follows."""
    try:
        api.delete(namespace, job)
        return "deleted the job"
    except Exception as e:
        return "the job was already gone" if _status(e) == 404 else f"could not delete the job: {e}"


def _create_or_attach(api, namespace: str, body: dict, poll_interval: float) -> bool:
    """Create the job; on 409 re-attach to it (True), unless it is Failed: then replace it (False)."""
    job = body["metadata"]["name"]
    try:
        api.create(namespace, body)
        return False
    except Exception as e:
        if _status(e) != 409:
            raise LaunchError(f"cannot create PyTorchJob {namespace}/{job}: {e}") from e
    if job_state(api.get(namespace, job))[0] != "Failed":
        return True
    print(f"PyTorchJob {namespace}/{job} was left Failed by an earlier try; replacing it", flush=True)
    api.delete(namespace, job)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            api.get(namespace, job)
        except Exception as e:
            if _status(e) == 404:
                break
        time.sleep(max(poll_interval, 0.05))
    try:
        api.create(namespace, body)
    except Exception as e:
        raise LaunchError(f"cannot replace the Failed PyTorchJob {namespace}/{job}: {e}") from e
    return False


def _follow_master_log(api, namespace: str, job: str, stop: threading.Event, poll_interval: float) -> None:
    """Print the master's log lines as they come; best effort, never fails the step."""
    warned = False
    while True:
        finished, printed = stop.is_set(), False  # one last try once the job ended: its whole log
        try:
            for line in api.master_log(namespace, job):
                print(f"[{job}-master-0] {line}", flush=True)
                printed = True
        except Exception as e:
            if not warned:
                print(f"PyTorchJob {namespace}/{job}: master log unavailable ({e}); still waiting", flush=True)
                warned = True
        if printed or finished:
            return
        stop.wait(max(poll_interval, 0.05))


class _Cancelled(BaseException):
    pass


def _raise_cancelled(signum, frame):
    raise _Cancelled(signal.Signals(signum).name)


def _wait(api, namespace: str, job: str, wait_timeout: int, poll_interval: float) -> None:
    where, last = f"PyTorchJob {namespace}/{job}", None
    deadline = time.monotonic() + wait_timeout
    while True:
        try:
            state, message = job_state(api.get(namespace, job))
        except Exception as e:
            if _status(e) == 404:
                raise LaunchError(f"{where} was deleted outside this step") from e
            state, message = last, ""
            print(f"{where}: status unavailable ({e}); retrying", flush=True)
        if state != last:
            print(f"{where}: {state}", flush=True)
            last = state
        if state == "Succeeded":
            return
        if state == "Failed":
            raise LaunchError(f"{where} failed: {message or 'no message'} "
                              f"(kubectl describe pytorchjob {job} -n {namespace})")
        if time.monotonic() >= deadline:
            raise LaunchError(f"{where} did not finish within wait_timeout={wait_timeout}s; "
                              f"{_delete(api, namespace, job)}")
        time.sleep(poll_interval)


def run_pytorchjob(*, name: str, namespace: str, image: str, command: list[str], num_workers: int = 1,
                   gpus_per_worker: int = 1, cpu: str = "4", memory: str = "32Gi",
                   node_selector: dict[str, str] | None = None, env: dict[str, str] | None = None,
                   secret_env: str | None = None, shm_size: str = "16Gi", service_account: str | None = None,
                   wait_timeout: int = 86400, poll_interval: float = 10.0, api=None) -> dict:
    """Create (or re-attach to) the PyTorchJob, stream its master's log and wait for Succeeded."""
    body = pytorchjob_body(name=name, namespace=namespace, image=image, command=command,
                           num_workers=num_workers, gpus_per_worker=gpus_per_worker, cpu=cpu, memory=memory,
                           node_selector=node_selector, env=env, secret_env=secret_env, shm_size=shm_size,
                           service_account=service_account)
    job = body["metadata"]["name"]
    api = api or KubeflowTrainingAPI(namespace)
    in_main = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGTERM, signal.SIGINT) if in_main else ()  # handlers can only be set from there
    previous = {s: signal.signal(s, _raise_cancelled) for s in signals}
    stop = threading.Event()
    logs = threading.Thread(target=_follow_master_log, args=(api, namespace, job, stop, poll_interval),
                            daemon=True)
    try:
        reattached = _create_or_attach(api, namespace, body, poll_interval)
        print(f"PyTorchJob {namespace}/{job}: {'re-attached' if reattached else 'created'} "
              f"({num_workers} x {gpus_per_worker} GPU, {image})", flush=True)
        logs.start()
        _wait(api, namespace, job, wait_timeout, poll_interval)
    except _Cancelled as e:
        for s, h in previous.items():
            signal.signal(s, h)
        raise LaunchError(f"PyTorchJob {namespace}/{job}: step cancelled by {e}; "
                          f"{_delete(api, namespace, job)}") from None
    finally:
        stop.set()
        if logs.is_alive():
            logs.join(timeout=10)
        for s, h in previous.items():
            signal.signal(s, h)
    return dict(job_name=job, namespace=namespace, status="Succeeded", reattached=reattached)
