"""Object-storage credentials for the stage containers, from a Kubernetes Secret.

The keys of Secret `ssl-lib-object-storage` (manifests/object-storage.env.example) become the stage
containers' env through kfp-kubernetes, so no credential is ever a pipeline parameter or a value in
compiled YAML. The access keys must exist; the endpoint (MinIO; absent for AWS S3), the region and
SSL_WORK_ROOT (where pretraining keeps its resumable checkpoints) may be left out.
"""
from kfp import kubernetes

from ssl_lib.engine.pytorchjob import OBJECT_STORAGE_SECRET

REQUIRED_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
OPTIONAL_KEYS = ("AWS_ENDPOINT_URL", "AWS_REGION", "SSL_WORK_ROOT")


def use_object_storage(*tasks):
    """Give every task the Secret's keys as env vars of the same names."""
    for task in tasks:
        kubernetes.use_secret_as_env(task, OBJECT_STORAGE_SECRET, {k: k for k in REQUIRED_KEYS})
        kubernetes.use_secret_as_env(task, OBJECT_STORAGE_SECRET, {k: k for k in OPTIONAL_KEYS}, optional=True)
