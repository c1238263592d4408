"""Submit a compiled pipeline to Kubeflow Pipelines.

    python -m pipelines.submit [--host URL] [--namespace NS] [--pipeline NAME|FILE] [--experiment NAME]
                               [--run-name NAME] [--param KEY=VALUE ...] [--pipeline-root s3://...] [--no-cache]

does what `kfp --endpoint URL -n NS run create -e NAME -f pipelines/compiled/NAME.yaml KEY=VALUE ...`
does, after checking the parameters against the pipeline. Values are read as the kfp CLI reads them
(JSON first: `[10,20]` is a list, `2` an int, anything else a string). Credentials are never
parameters: the stages read them from Secret ssl-lib-object-storage (pipelines/object_storage.py).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import kfp
import yaml
from kfp.cli.utils.parsing import parse_parameter_value

from pipelines import benchmark

COMPILED = Path(__file__).resolve().parent / "compiled"
PIPELINE_ROOT_SCHEMES = ("s3://", "minio://")
# what a pipeline's DAG cannot say about its own arguments, by pipeline name
ARGUMENT_CHECKS = {"ssl-benchmark": benchmark.check_arguments}


def package_path(pipeline: str) -> Path:
    """A pipeline's name in pipelines/compiled (`benchmark`) or the path of a compiled YAML."""
    path = Path(pipeline) if pipeline.endswith((".yaml", ".yml")) else COMPILED / f"{pipeline}.yaml"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in COMPILED.glob("*.yaml"))) or "none"
        raise ValueError(f"no compiled pipeline {path} (in {COMPILED}: {have}); run `make compile`")
    return path


def parse_params(items: list[str]) -> dict:
    """["key=value", ...] -> {key: value}, each value read as `kfp run create` reads it."""
    params = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        if key in params:
            raise ValueError(f"--param {key} given twice")
        params[key] = parse_parameter_value(value)
    return params


def check_arguments(package: Path, arguments: dict) -> None:
    """Unknown or missing parameters fail here, before the run exists, with the names the pipeline takes."""
    spec = next(yaml.safe_load_all(package.read_text()))
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    unknown = sorted(set(arguments) - set(declared))
    if unknown:
        raise ValueError(f"{package.name} takes no parameter {', '.join(unknown)}; "
                         f"it takes: {', '.join(sorted(declared))}")
    missing = sorted(name for name, d in declared.items() if not d.get("isOptional") and name not in arguments)
    if missing:
        raise ValueError(f"{package.name} needs --param " + " --param ".join(f"{m}=..." for m in missing))
    check = ARGUMENT_CHECKS.get(spec["pipelineInfo"]["name"])
    if check:
        check(arguments)


def check_pipeline_root(root: str | None) -> str | None:
    if root and not root.startswith(PIPELINE_ROOT_SCHEMES):
        raise ValueError(f"--pipeline-root {root!r}: expected s3://bucket/prefix or minio://bucket/prefix "
                         f"(or leave it out: the namespace's kfp-launcher ConfigMap names the default)")
    return root


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=os.environ.get("KFP_HOST") or None,
                   help="KFP API endpoint (default: $KFP_HOST; unset: in-cluster or kube-config port-forward)")
    p.add_argument("--namespace", default=os.environ.get("KFP_NAMESPACE") or None,
                   help="Kubeflow profile namespace (default: $KFP_NAMESPACE; unset: the client's own)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a pipeline parameter; repeat")
    p.add_argument("--pipeline-root", help="s3:// or minio:// (default: the namespace's kfp-launcher ConfigMap)")


def connect(args: argparse.Namespace) -> kfp.Client:
    # kfp.Client's namespace defaults to "kubeflow", which it also uses to reach the API through a kube proxy
    return kfp.Client(host=args.host, **({"namespace": args.namespace} if args.namespace else {}))


def resolve_request(args: argparse.Namespace) -> tuple[Path, dict, str | None]:
    """The compiled package, its checked arguments and pipeline root; ValueError names what is wrong."""
    package = package_path(args.pipeline)
    arguments = parse_params(args.param)
    check_arguments(package, arguments)
    return package, arguments, check_pipeline_root(args.pipeline_root)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.submit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_args(p)
    p.add_argument("--pipeline", default="pretrain_and_benchmark", help="name in pipelines/compiled, or a YAML path")
    p.add_argument("--experiment", default="ssl-lib")
    p.add_argument("--run-name", help="default: the pipeline file's name and the time")
    p.add_argument("--no-cache", action="store_true", help="run every stage again (enable_caching=False)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        package, arguments, pipeline_root = resolve_request(args)
    except ValueError as e:
        print(f"submit: {e}", file=sys.stderr)
        return 2
    result = connect(args).create_run_from_pipeline_package(
        str(package), arguments=arguments, run_name=args.run_name, experiment_name=args.experiment,
        namespace=args.namespace, pipeline_root=pipeline_root, enable_caching=False if args.no_cache else None)
    print(f"submitted {package.name} to experiment {args.experiment}: run {result.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
