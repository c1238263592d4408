"""Resource requests of pipeline tasks."""


def on_gpus(task, gpus):
    """Ask Kubernetes for `gpus` NVIDIA GPUs for `task` (a pipeline parameter; 0 runs it on CPUs).
    Feature extraction and the faiss search move to the GPU when the container sees one.

    KFP's compiler does not carry a channel used only in a resource setting into a dsl.If branch:
    the task must also take `gpus` as an input (the components check it against what they see)."""
    return task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(gpus)
