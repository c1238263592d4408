"""Resource requests of pipeline tasks."""


def on_gpus(task, gpus):
    """Ask Kubernetes for `gpus` NVIDIA GPUs for `task` (a pipeline parameter; 0 runs it on CPUs).
    Feature extraction and the faiss search move to the GPU when the container sees one."""
    return task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(gpus)
