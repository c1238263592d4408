"""Stage `detection`: the seed's detection benchmark on MMDetection, from extract's backbone and, as
the baseline, from random init: Faster R-CNN C4 on VOC07+12 (`voc0712`: mAP over IoU 0.5:0.95 and
AP50 on VOC2007 test) or Mask R-CNN FPN on COCO2017 (`coco`: box and mask mAP, AP50, AP75), on the
det/seg dataset artifact (`prep --task detseg`). The config defaults to the seed's R50 config for a
ResNet-50 and to our small CPU config for the mosaic otherwise; `iters` and `image_size` rescale its
schedule and image sizes. The engine's work dir is temporary; only metrics.json is published."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .. import outlock, storage
from ._cli import require_gpus, run_cli


@outlock.writes("output")
def detection(dataset: str, backbone: str, output: str, protocol: str = "voc0712", config: str = "",
              iters: int = 0, image_size: int = 0, baseline: bool = True, gpus: int = 0,
              cfg_options: list[str] | None = None) -> dict:
    require_gpus("detection", gpus)
    start = time.time()
    from ..benchmarks.detection import run_detection  # mmdet takes seconds to import; --help should not wait

    metrics = run_detection(dataset, backbone, protocol=protocol, config=config, iters=iters,
                            image_size=image_size, baseline=baseline, cfg_options=cfg_options)
    metrics["seconds"] = round(time.time() - start, 1)
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.detection", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="det/seg dataset artifact (prep --task detseg)")
    p.add_argument("--backbone", required=True, help="extract stage output (backbone.pth + backbone.json)")
    p.add_argument("--output", required=True, help="folder or s3:// URI for metrics.json")
    p.add_argument("--protocol", default="voc0712", choices=["voc0712", "coco"])
    p.add_argument("--config", default="", help="mmdet config (default: the protocol's for this backbone)")
    p.add_argument("--iters", type=int, default=0, help="training iterations (0: the config's schedule)")
    p.add_argument("--image-size", type=int, default=0,
                   help="test images' shorter side in pixels, training sizes scaled alike (0: the config's)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the same training from random init")
    p.add_argument("--gpus", type=int, default=0, help="GPUs the step was given; fail early if fewer are visible")
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), detection))
