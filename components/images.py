"""The one place that names the stage images: repository and tag tied to the package version.

The registry defaults to a fixed value so that compiled pipelines are reproducible; set
SSL_LIB_IMAGE_REGISTRY before compiling (and before `make images`) to point at your own.
`python -m components.images` prints `family image dockerfile` per line for the Makefile.
"""
import os

from ssl_lib import __version__

DEFAULT_REGISTRY = "ghcr.io/ssl-lib"
REGISTRY = (os.environ.get("SSL_LIB_IMAGE_REGISTRY") or DEFAULT_REGISTRY).rstrip("/")

# family -> (repository name, Dockerfile); `make images` builds them in this order (bench is FROM cuda)
FAMILIES = {
    "cpu": ("ssl-lib-cpu", "images/cpu/Dockerfile"),
    "cuda": ("ssl-lib-cuda", "images/cuda/Dockerfile"),
    "bench": ("ssl-lib-bench", "images/bench/Dockerfile"),
}


def image(family: str, registry: str = REGISTRY) -> str:
    return f"{registry}/{FAMILIES[family][0]}:{__version__}"


CPU_IMAGE = image("cpu")
TRAINING_IMAGE = image("cuda")
BENCHMARK_IMAGE = image("bench")

if __name__ == "__main__":
    for family, (_, dockerfile) in FAMILIES.items():
        print(family, image(family), dockerfile)
