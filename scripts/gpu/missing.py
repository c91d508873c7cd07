"""The distributions the GPU tier needs beyond what a GPU machine with torch, transformers, peft and
accelerate already has: the dependency closure of NEEDS minus the closure of HAVE, read from the
installed metadata of this (complete) environment. For this Python each is pinned to the version
installed here (the versions the tests pass with); for another Python (the GPU machine's) only trl
is pinned, the rest left to pip, as this Python's versions may not exist for that one.

    python scripts/gpu/missing.py              # markers evaluated for this Python
    python scripts/gpu/missing.py 3.10         # ... for the GPU machine's Python
"""
from __future__ import annotations

import importlib.metadata as md
import platform
import sys

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HAVE = ["torch", "transformers", "peft", "accelerate"]  # what the GPU machine is known to have
NEEDS = ["trl", "pytest"]                               # the tier: trl's trainers, and pytest to run it


def closure(roots: list[str], env: dict) -> dict[str, str | None]:
    """{canonical name: installed version, None if not installed here} of `roots` and everything they require (extras followed)."""
    seen: dict[str, str] = {}
    todo = [(r, ()) for r in roots]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:  # needed by the other Python only (tomli on 3.10): pip resolves it
            seen[key] = None
            continue
        first = key not in seen
        seen[key] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            in_extra = req.marker is not None and "extra" in str(req.marker)
            wanted = [e for e in extras if req.marker is not None and req.marker.evaluate({**env, "extra": e})]
            if in_extra and not wanted:
                continue
            if not in_extra and req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            if first or wanted:
                todo.append((req.name, tuple(req.extras)))
    return seen


def main():
    env = default_environment()
    here = env["python_version"]
    if len(sys.argv) > 1:
        v = sys.argv[1]
        env.update(python_version=".".join(v.split(".")[:2]), python_full_version=v if v.count(".") == 2 else v + ".0")
    have = closure(HAVE, env)
    need = closure(NEEDS, env)
    same = env["python_version"] == here
    for name in sorted(set(need) - set(have)):
        pin = need[name] is not None and (same or name in NEEDS[:1])
        print(f"{name}=={need[name]}" if pin else name)
    print(f"# for Python {env['python_version']} on {platform.machine()}; the GPU machine's {', '.join(HAVE)} "
          f"and their dependencies are assumed present", file=sys.stderr)


if __name__ == "__main__":
    main()
