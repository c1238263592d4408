"""The one place that names the stage images: repository and tag tied to the package version.

The registry defaults to a fixed value so that compiled pipelines are reproducible; set
SSL_LIB_IMAGE_REGISTRY before compiling (and before `make images`) to point at your own.

Digests: KFP's cache key sees the image string, not the image's content, so a rebuilt image pushed
under the same tag would be served from cache. `make images-push` therefore records each pushed
image's registry digest in images/digests.json ({family: {"image": "<repo>:<tag>", "digest":
"sha256:..."}}), and while an entry belongs to the image named now (same registry, repository and
version) the components run `<repo>@sha256:...`. Without the file, or for an entry of another
registry or version (stale: a warning says so), the components run the tag alone.
SSL_LIB_IMAGE_DIGESTS names another digests file (a fork's own registry, tests).

    python -m components.images                          `family image dockerfile` per line (tags)
    python -m components.images record FAMILY REPO@DIGEST  what `make images-push` calls after a push
"""
from __future__ import annotations

import json
import os
import re
import sys
import warnings
from pathlib import Path

from ssl_lib import __version__

DEFAULT_REGISTRY = "ghcr.io/ssl-lib"
REGISTRY = (os.environ.get("SSL_LIB_IMAGE_REGISTRY") or DEFAULT_REGISTRY).rstrip("/")
DIGESTS_FILE = Path(os.environ.get("SSL_LIB_IMAGE_DIGESTS")
                    or Path(__file__).resolve().parents[1] / "images" / "digests.json")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

# family -> (repository name, Dockerfile); `make images` builds them in this order (bench, detseg FROM cuda)
FAMILIES = {
    "cpu": ("ssl-lib-cpu", "images/cpu/Dockerfile"),
    "cuda": ("ssl-lib-cuda", "images/cuda/Dockerfile"),
    "bench": ("ssl-lib-bench", "images/bench/Dockerfile"),
    "detseg": ("ssl-lib-detseg", "images/detseg/Dockerfile"),
}


def repository(family: str, registry: str = REGISTRY) -> str:
    return f"{registry}/{FAMILIES[family][0]}"


def image(family: str, registry: str = REGISTRY) -> str:
    """The tag that `make images` builds and `make images-push` pushes."""
    return f"{repository(family, registry)}:{__version__}"


def read_digests(path: Path = DIGESTS_FILE) -> dict:
    """images/digests.json, checked; {} when it does not exist."""
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e}); delete it or run `make images-push` again") from e
    for family, entry in entries.items():
        if (family not in FAMILIES or not isinstance(entry, dict)
                or not DIGEST.fullmatch(str(entry.get("digest"))) or not entry.get("image")):
            raise ValueError(f"{path}: entry {family!r} must be one of {sorted(FAMILIES)} mapped to "
                             f'{{"image": "<repo>:<tag>", "digest": "sha256:<64 hex>"}}, got {entry!r}')
    return entries


def pinned(family: str, registry: str = REGISTRY, digests_file: Path = DIGESTS_FILE) -> str:
    """What the components run: `<repo>@sha256:...` when a digest of this very tag is recorded, else the tag."""
    tag = image(family, registry)
    entry = read_digests(digests_file).get(family)
    if entry is None:
        return tag
    if entry["image"] != tag:
        warnings.warn(f"{digests_file}: the digest recorded for {family} belongs to {entry['image']}, not {tag}; "
                      f"using the tag alone (run `make images images-push` to record {tag}'s digest)", stacklevel=2)
        return tag
    return f"{repository(family, registry)}@{entry['digest']}"


def record(family: str, repo_digest: str, registry: str = REGISTRY, digests_file: Path = DIGESTS_FILE) -> str:
    """Record `<repo>@sha256:...` (an entry of `docker inspect`'s RepoDigests) as the digest of the family's tag."""
    if family not in FAMILIES:
        raise ValueError(f"unknown image family {family!r}; known: {', '.join(FAMILIES)}")
    repo, _, digest = repo_digest.strip().partition("@")
    if repo != repository(family, registry) or not DIGEST.fullmatch(digest):
        raise ValueError(f"{repo_digest!r} is not a digest of {repository(family, registry)} "
                         f"(expected {repository(family, registry)}@sha256:<64 hex>)")
    entries = read_digests(digests_file)
    entries[family] = {"image": image(family, registry), "digest": digest}
    tmp = digests_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n")
    tmp.replace(digests_file)
    return f"{repo}@{digest}"


CPU_IMAGE = pinned("cpu")
TRAINING_IMAGE = pinned("cuda")
BENCHMARK_IMAGE = pinned("bench")
DETSEG_IMAGE = pinned("detseg")


def main(argv: list[str]) -> int:
    if not argv:
        for family, (_, dockerfile) in FAMILIES.items():
            print(family, image(family), dockerfile)
        return 0
    if argv[0] == "record" and len(argv) == 3:
        try:
            print(f"{DIGESTS_FILE}: {argv[1]} = {record(argv[1], argv[2])}")
        except ValueError as e:
            print(f"components.images record: {e}", file=sys.stderr)
            return 2
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
