"""Stage `segmentation`: the seed's FCN benchmark on MMSegmentation (VOC12 + aug or Cityscapes, mIoU) from
the extracted backbone, and from random init as the baseline, on the prepared det/seg dataset artifact
(`prep --task detseg`). The engine's work folder is a temporary one; only metrics.json is published."""
from __future__ import annotations

import argparse
import json
import sys

from .. import outlock, storage
from ..benchmarks.segmentation import PROTOCOL_LAYOUTS, run_segmentation
from ._cli import require_gpus, run_cli


@outlock.writes("output")
def segmentation(dataset: str, backbone: str, output: str, protocol: str = "voc12aug", config: str = "",
                 iters: int = 0, image_size: int = 0, baseline: bool = True, gpus: int = 0,
                 cfg_options: list[str] | None = None) -> dict:
    require_gpus("segmentation", gpus)
    metrics = run_segmentation(dataset, backbone, protocol=protocol, config=config, iters=iters,
                               image_size=image_size, baseline=baseline, cfg_options=cfg_options)
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.segmentation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="det/seg dataset artifact (manifest.json)")
    p.add_argument("--backbone", required=True, help="extract stage output (backbone.pth + backbone.json)")
    p.add_argument("--output", required=True)
    p.add_argument("--protocol", default="voc12aug", choices=sorted(PROTOCOL_LAYOUTS))
    p.add_argument("--config", default="", help="mmseg config; default: the seed's R50 config for a ResNet-50, "
                                                "the CPU recipe for smaller backbones")
    p.add_argument("--iters", type=int, default=0, help="training iterations (0: the config's)")
    p.add_argument("--image-size", type=int, default=0, help="training crop side (0: the config's)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the random-init run")
    p.add_argument("--gpus", type=int, default=0, help="GPUs the step was given; fail early if fewer are visible")
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), segmentation))
