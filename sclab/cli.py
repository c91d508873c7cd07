"""The `sclab` command: run notebooks in batch, rebuild the report, show resolved parameters.

Exit status: 0 ok, 2 refused before anything ran (bad parameters, a missing requirement, an
output directory another run is writing: a message, no traceback), 1 a notebook failed,
128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP) after its notebook was killed.

    $ sclab run --all --preset quick          # record every notebook with params/<nb>/quick.yaml, then REPORT.md
    $ sclab reproduce                         # re-run them into reproduced/ and verify the recorded results
    $ sclab verify 00_quickstart              # compare a re-run with the recorded run again
    $ sclab run 00_quickstart -p n_problems 50 && sclab params 00_quickstart --preset quick
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sclab.runs.params import ParamError, as_dict, load_params, params_hash, unmet_requirements
from sclab.runs.procs import Stopped


def _stem(arg: str) -> str:
    """A notebook given as a stem, a filename or a path -> its stem."""
    name = Path(arg).name
    return name[: -len(".ipynb")] if name.endswith(".ipynb") else name


def _overrides(pairs: list[list[str]] | None) -> dict[str, str]:
    return {k: v for k, v in (pairs or [])}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sclab", description="The self-correction lab.")
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute notebooks with papermill and record them in outputs/")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="a stem (00_quickstart), a filename or a path")
    run.add_argument("--all", action="store_true", help="every notebook that has this preset")
    run.add_argument("--preset", default="quick", help="params/<notebook>/<PRESET>.yaml (default: quick)")
    run.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"),
                     help="override one parameter (parsed as YAML), repeatable")
    run.add_argument("--outputs", metavar="DIR", help="default: $SCLAB_OUTPUTS or <project>/outputs")
    run.add_argument("--timeout", type=float, default=1800, metavar="S",
                     help="wall-clock limit per notebook in seconds (default 1800)")
    run.add_argument("--force", action="store_true",
                     help="with --all: re-run finished runs that have the same params")
    run.add_argument("--seeds", type=int, nargs="+", metavar="N",
                     help="run the preset once per seed (each into <preset>+seed<N>, beside the preset's own run; "
                          "no -p overrides); REPORT.md gives each finding's spread over the preset's run and these")

    rep = sub.add_parser("report", help="rebuild outputs/REPORT.md")
    rep.add_argument("--outputs", metavar="DIR")

    rpr = sub.add_parser("reproduce", help="re-run the recorded notebooks into reproduced/ and verify them")
    rpr.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="default: every notebook with a recorded run")
    rpr.add_argument("--preset", default="quick")
    rpr.add_argument("--timeout", type=float, default=1800, metavar="S")
    rpr.add_argument("--force", action="store_true", help="re-run even where a re-run with the same code exists")

    ver = sub.add_parser("verify", help="compare re-runs in reproduced/ with the recorded runs in outputs/")
    ver.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="default: every notebook with a re-run")
    ver.add_argument("--preset", default="quick")
    ver.add_argument("--against", metavar="DIR", help="the re-runs' root (default: $SCLAB_REPRODUCED or reproduced/)")

    par = sub.add_parser("params", help="print a notebook's resolved parameters")
    par.add_argument("notebook", metavar="NOTEBOOK")
    par.add_argument("--preset", default="quick")
    par.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"))

    toy = sub.add_parser("toy", help="the toy world: its card (knobs and measured effects), or a rebuild")
    toy_sub = toy.add_subparsers(dest="toy_command", required=True)
    info = toy_sub.add_parser("info", help="print the world card of a toy model")
    info.add_argument("name", nargs="?", default="arith", help="a toy model name (default: arith)")
    info.add_argument("--measure", action="store_true",
                      help="measure the card on held-out problems if it is not cached (~4 CPU minutes)")
    info.add_argument("--problems", type=int, default=1000, help="held-out problems to measure on (default 1000)")
    build = toy_sub.add_parser("build", help="train a toy model from scratch (seeded; ~5 CPU minutes)")
    build.add_argument("name", nargs="?", default="arith")
    return ap


def _toy(args: argparse.Namespace) -> int:
    from sclab.toy.registry import TOY_MODELS

    if args.name not in TOY_MODELS:
        raise ParamError(f"toy: unknown toy model {args.name!r}; valid toy models: {', '.join(sorted(TOY_MODELS))}")
    if args.toy_command == "info" and args.problems < 1:
        raise ParamError(f"toy info: --problems must be >= 1, got {args.problems}")
    from sclab.toy.build import built_path, shipped_path, toy_model_path, weights_sha256
    from sclab.toy.card import cached_card, card_differences, format_card

    rebuild = args.toy_command == "build"
    path = toy_model_path(args.name, rebuild=rebuild)
    if rebuild:
        path = built_path(args.name)  # the fresh build, not the shipped reference
    build = json.loads((path / "sclab_toy.json").read_text())
    card = cached_card(args.name, n_problems=args.problems if not rebuild else 1000,
                       measure=rebuild or args.measure, model_dir=path)
    print(format_card(card, build))
    if "greedy_acc" not in card:
        print("\n(not measured yet: `sclab toy info --measure` measures it on held-out problems)")
    shipped = shipped_path(args.name)
    if rebuild and shipped is not None:  # how this machine's rebuild differs from the shipped reference
        same = weights_sha256(path) == weights_sha256(shipped)
        print(f"\nshipped reference build: {shipped}\n  weights {'identical' if same else 'differ'} "
              f"(sha256 {weights_sha256(shipped)[:12]} shipped, {weights_sha256(path)[:12]} rebuilt)")
        ref = cached_card(args.name, n_problems=1000, measure=True, model_dir=shipped)
        diffs = card_differences(ref, card)
        print("  world card: " + ("identical" if not diffs else f"{len(diffs)} figures differ (shipped -> rebuilt):"))
        for line in diffs:
            print("    " + line)
    return 0


def _run(args: argparse.Namespace, ap: argparse.ArgumentParser) -> int:
    from sclab.runs.execute import run_all, run_many
    from sclab.runs.report import build_report

    overrides = _overrides(args.p)
    if args.all == bool(args.notebooks):
        ap.error("run: give NOTEBOOK... or --all (not both)")
    if args.seeds is not None:
        if overrides:   # a seed run is the preset with only its seed changed: the report spreads findings over them
            ap.error("run: --seeds runs the preset as it is with other seeds; it takes no -p overrides "
                     "(put them in a preset file of their own)")
        if any(s < 0 for s in args.seeds) or len(set(args.seeds)) != len(args.seeds):
            ap.error(f"run: --seeds must be distinct integers >= 0, got {args.seeds}")
    results = []
    for seed_over in ([{"seed": str(s)} for s in args.seeds] if args.seeds is not None else [{}]):
        over = {**overrides, **seed_over}
        if args.all:
            results += run_all(args.preset, over, args.outputs, args.timeout, args.force)
        else:  # named notebooks always run
            results += run_many([_stem(n) for n in args.notebooks], args.preset, over, args.outputs, args.timeout)
    if args.all:
        print(f"report: {build_report(args.outputs)}")
    bad = [r for r in results if not r.ok]
    for r in bad:
        see = r.notebook if r.notebook.exists() else r.run_dir / "run.log"  # no notebook: papermill failed early
        print(f"sclab: {r.stem} [{r.preset}] {r.status}; see {see}", file=sys.stderr)
    return 1 if bad else 0


def _verify(args: argparse.Namespace) -> int:
    from sclab.runs.reproduce import reproduce, reproduced_root, verify

    stems = [_stem(n) for n in args.notebooks]
    if args.command == "reproduce":
        results = reproduce(args.preset, stems or None, args.force, args.timeout)
    else:
        root = Path(args.against) if args.against else reproduced_root()
        stems = stems or sorted(p.parent.parent.name for p in root.glob(f"*/{args.preset}/manifest.json"))
        if not stems:
            raise ParamError(f"verify: no re-runs with preset {args.preset!r} under {root}")
        results = [verify(s, args.preset, root) for s in stems]
    for v in results:
        print(v.summary())
    return 0 if results and all(v.ok for v in results) else 1


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args, ap)
        if args.command == "toy":
            return _toy(args)
        if args.command in ("reproduce", "verify"):
            return _verify(args)
        if args.command == "report":
            from sclab.runs.report import build_report

            print(build_report(args.outputs))
            return 0
        if args.command == "params":
            import yaml

            # shown even where it cannot run (a GPU preset on a laptop), with what is missing
            params = load_params(_stem(args.notebook), args.preset, _overrides(args.p), requirements=False)
            print(f"# {_stem(args.notebook)} [{args.preset}] params hash {params_hash(params)}")
            for key, problem in unmet_requirements(params).items():
                print(f"# not runnable here: key {key!r}: {problem}")
            print(yaml.safe_dump(as_dict(params), sort_keys=False), end="")
            return 0
    except ParamError as e:
        print(f"sclab: error: {e}", file=sys.stderr)
        return 2
    except Stopped as e:
        kept = f"; the run is kept as {e.run_dir} (status interrupted); run again to resume" if e.run_dir else ""
        try:  # after SIGHUP the terminal may be gone
            print(f"sclab: stopped by {e}: the notebook's processes are gone{kept}", file=sys.stderr)
        except OSError:
            pass
        return 128 + e.signum
    except KeyboardInterrupt:
        print("sclab: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
