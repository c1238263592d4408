"""Print the project's pinned requirements from pyproject.toml, one per line, for `pip install`.

    python images/project_requirements.py                      all [project] dependencies
    python images/project_requirements.py --without faiss-cpu  all but these (the CUDA image uses faiss-gpu)
    python images/project_requirements.py --only torch torchvision
    python images/project_requirements.py --extra bench        an optional-dependency group (must exist)
"""
import argparse
import re
import sys
import tomllib


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pyproject", default="pyproject.toml")
    p.add_argument("--only", nargs="+", default=[])
    p.add_argument("--without", nargs="+", default=[])
    p.add_argument("--extra")
    args = p.parse_args()
    with open(args.pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    if args.extra:
        groups = project.get("optional-dependencies", {})
        if args.extra not in groups:
            print(f"{args.pyproject}: no [project.optional-dependencies] group {args.extra!r} "
                  f"(have: {', '.join(groups) or 'none'})", file=sys.stderr)
            return 2
        reqs = groups[args.extra]
    else:
        reqs = project["dependencies"]
    name = lambda r: re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower()  # noqa: E731
    only, without = {n.lower() for n in args.only}, {n.lower() for n in args.without}
    missing = only - {name(r) for r in reqs}
    if missing:
        print(f"{args.pyproject}: no requirement named {', '.join(sorted(missing))}", file=sys.stderr)
        return 2
    for r in reqs:
        if (not only or name(r) in only) and name(r) not in without:
            print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
