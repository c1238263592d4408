"""Which stages of a run KFP computes and which it takes from its cache.

KFP's driver keys a task's cache entry (backend/src/v2/cacheutils/cache.go, GenerateCacheKey) on the
task's input parameter values, the names of its input artifacts (every artifact a task produces has
its own name, so a task that ran again feeds new names downstream), the names and types of its
outputs, and its container's image string, command and args. `fingerprints` builds the same
ingredients for each task of a compiled pipeline, naming what an upstream task passes (an artifact;
a parameter, whose value KFP compares) by that task's fingerprint: a task gets the same fingerprint
in two runs exactly when KFP serves the second from the cache of the first. The key sees strings,
not contents: new data behind the same URI, or a rebuilt image under the same tag, is not seen.

    python -m pipelines.cache_keys [--pipeline pretrain_and_benchmark] [--param KEY=VALUE ...] \\
        [--change KEY=VALUE ...]

prints each task's fingerprint for the run with --param, and with --change which tasks a second
run that also changes those parameters would compute again.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from graphlib import TopologicalSorter

import yaml

from pipelines.submit import check_arguments, package_path, parse_params
from ssl_lib.stages.plan import plan


def _number_as_double(value):
    """Parameter values as KFP holds them (protobuf Value: every number a double), so 10 == 10.0."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [_number_as_double(v) for v in value]
    return {k: _number_as_double(v) for k, v in value.items()}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


# Components whose output parameters are a pure function of their input parameters: a consumer's key
# holds the value, as KFP's does, so that switching one benchmark on or off changes only its stage.
OUTPUT_VALUES = {"comp-plan-benchmarks": lambda params: plan(params["benchmarks"])}


def fingerprints(spec: dict, arguments: dict | None = None) -> dict[str, str]:
    """{task: fingerprint} for a compiled pipeline (its first YAML document) run with `arguments`."""
    root = spec["root"]
    pipeline_inputs = {name: d.get("defaultValue")
                       for name, d in root.get("inputDefinitions", {}).get("parameters", {}).items()}
    pipeline_inputs.update(arguments or {})
    tasks = root["dag"]["tasks"]
    upstream = {name: {ref[kind]["producerTask"] for section in ("parameters", "artifacts")
                       for ref in t.get("inputs", {}).get(section, {}).values()
                       for kind in ("taskOutputParameter", "taskOutputArtifact") if kind in ref}
                | set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    done: dict[str, str] = {}
    values: dict[str, dict] = {}
    for name in TopologicalSorter(upstream).static_order():
        task = tasks[name]
        component = spec["components"][task["componentRef"]["name"]]
        if "dag" in component:
            raise ValueError(f"task {name} is a sub-DAG (dsl.If, dsl.ParallelFor); cache_keys covers flat DAGs")
        executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
        declared = component.get("inputDefinitions", {}).get("parameters", {})
        parameters = {k: d["defaultValue"] for k, d in declared.items() if "defaultValue" in d}
        for key, ref in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in ref:
                parameters[key] = pipeline_inputs[ref["componentInputParameter"]]
            elif "runtimeValue" in ref:
                parameters[key] = ref["runtimeValue"]["constant"]
            else:
                out = ref["taskOutputParameter"]
                known = values.get(out["producerTask"])
                parameters[key] = (known[out["outputParameterKey"]] if known is not None
                                   else f"{done[out['producerTask']]}/{out['outputParameterKey']}")
        artifacts = {}
        for key, ref in task.get("inputs", {}).get("artifacts", {}).items():
            out = ref["taskOutputArtifact"]
            artifacts[key] = [f"{done[out['producerTask']]}/{out['outputArtifactKey']}"]
        outputs = component.get("outputDefinitions", {})
        key = {
            "inputArtifactNames": artifacts,
            "inputParameterValues": _number_as_double(parameters),
            "outputArtifactsSpec": {k: v["artifactType"] for k, v in outputs.get("artifacts", {}).items()},
            "outputParametersSpec": {k: v["parameterType"] for k, v in outputs.get("parameters", {}).items()},
        }
        if "container" in executor:
            c = executor["container"]
            key["containerSpec"] = {"image": c["image"], "cmdArgs": c.get("command", []) + c.get("args", [])}
        else:  # an importer: reimport=False finds the artifact already registered for the same URI
            key["importer"] = executor["importer"]
        done[name] = _digest(key)
        if task["componentRef"]["name"] in OUTPUT_VALUES:
            values[name] = OUTPUT_VALUES[task["componentRef"]["name"]](parameters)
    return done


def load(pipeline: str) -> dict:
    return next(yaml.safe_load_all(package_path(pipeline).read_text()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.cache_keys", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default="pretrain_and_benchmark", help="name in pipelines/compiled, or a YAML path")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="the first run's parameters")
    p.add_argument("--change", action="append", default=[], metavar="KEY=VALUE",
                   help="what a second run changes; repeat")
    args = p.parse_args(argv)
    try:
        first = parse_params(args.param)
        second = {**first, **parse_params(args.change)}
        for arguments in (first, second):
            check_arguments(package_path(args.pipeline), arguments)
        spec = load(args.pipeline)
        before, after = fingerprints(spec, first), fingerprints(spec, second)
    except ValueError as e:
        print(f"cache_keys: {e}", file=sys.stderr)
        return 2
    for task, key in before.items():
        line = f"{task:20s} {key[:16]}"
        if args.change:
            line += "  cached" if after[task] == key else f"  runs again ({after[task][:16]})"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
