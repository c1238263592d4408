"""Create the nightly recurring run of the benchmark pipeline.

    python -m pipelines.schedule --param dataset_uri=s3://... --param checkpoint_uri=s3://... \\
        [--cron "0 0 2 * * *"] [--name ssl-nightly-benchmark] [--experiment ssl-lib-nightly] [--replace]

KFP's scheduler reads a cron expression with SIX fields, seconds first:
`second minute hour day-of-month month day-of-week`. A usual five-field expression would be read
shifted by one field (`0 2 * * *` means minute 2 of every hour), so it is refused. The run never
overlaps itself (max_concurrency=1), skips the nights it missed while paused (no_catchup) and
runs every stage each night (caching off: the checkpoint behind the same URI changes).
`kfp recurring-run create` cannot turn caching off (kfp 2.17.3 ignores --disable-caching), hence this.
"""
from __future__ import annotations

import argparse
import sys

from pipelines.submit import add_connection_args, connect, resolve_request

DEFAULT_CRON = "0 0 2 * * *"  # 02:00 every day, in the scheduler's time zone (UTC unless set otherwise)
DEFAULT_NAME = "ssl-nightly-benchmark"


def check_cron(expression: str) -> str:
    fields = expression.split()
    if len(fields) == 6:
        return " ".join(fields)
    if len(fields) == 5:
        raise ValueError(f"cron {expression!r} has 5 fields, but KFP's scheduler reads 6 with seconds first "
                         f"(second minute hour day-of-month month day-of-week), so it would run at other "
                         f"times than meant, e.g. every hour; the 6-field form: '0 {' '.join(fields)}'")
    count = f"{len(fields)} field" + ("" if len(fields) == 1 else "s")
    raise ValueError(f"cron {expression!r} has {count}; KFP's scheduler needs 6, seconds first "
                     f"(second minute hour day-of-month month day-of-week), e.g. '{DEFAULT_CRON}' for 02:00 daily")


def existing(client, experiment_id: str, name: str) -> list:
    """The recurring runs of `experiment_id` named `name`."""
    found, token = [], ""
    while True:
        page = client.list_recurring_runs(experiment_id=experiment_id, page_size=100, page_token=token)
        found += [r for r in page.recurring_runs or [] if r.display_name == name]
        token = page.next_page_token
        if not token:
            return found


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.schedule", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_args(p)
    p.add_argument("--pipeline", default="benchmark", help="name in pipelines/compiled, or a YAML path")
    p.add_argument("--experiment", default="ssl-lib-nightly")
    p.add_argument("--name", default=DEFAULT_NAME, help="the recurring run's name")
    p.add_argument("--cron", default=DEFAULT_CRON, help=f"6 fields, seconds first (default {DEFAULT_CRON!r})")
    p.add_argument("--replace", action="store_true", help="delete a recurring run of this name first")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cron = check_cron(args.cron)
        package, arguments, pipeline_root = resolve_request(args)
    except ValueError as e:
        print(f"schedule: {e}", file=sys.stderr)
        return 2
    client = connect(args)
    experiment = client.create_experiment(name=args.experiment, namespace=args.namespace)
    old = existing(client, experiment.experiment_id, args.name)
    if old and not args.replace:
        print(f"schedule: experiment {args.experiment} already has recurring run {args.name!r} "
              f"({', '.join(r.recurring_run_id for r in old)}); pass --replace to recreate it, or another --name",
              file=sys.stderr)
        return 2
    for r in old:
        client.delete_recurring_run(r.recurring_run_id)
        print(f"deleted recurring run {r.recurring_run_id} ({args.name})")
    created = client.create_recurring_run(
        experiment_id=experiment.experiment_id, job_name=args.name,
        description=f"{package.name} at cron '{cron}' (seconds first)", cron_expression=cron,
        max_concurrency=1, no_catchup=True, params=arguments, pipeline_package_path=str(package),
        enabled=True, pipeline_root=pipeline_root, enable_caching=False)
    print(f"recurring run {created.recurring_run_id} ({args.name}): {package.name} at '{cron}' "
          f"in experiment {args.experiment}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
