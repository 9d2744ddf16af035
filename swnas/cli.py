"""The ``swnas`` command line: search, report, train, export, ensemble, score, backends.

Every subcommand validates its input; a bad flag exits with code 2 (argparse), and a bad value or
path prints ``swnas <command>: error: ...`` on stderr and exits with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from swnas.errors import InputError, SwnasError

__all__ = ["main", "build_parser"]

S = argparse.SUPPRESS


# ------------------------------------------------------------------------------- argument helpers
def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _stage_list(text: str) -> list[int]:
    try:
        vals = [int(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated module counts such as 9,9,9, got {text!r}"
        ) from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive module counts such as 9,9,9, got {text!r}")
    return vals


def _param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a name, got {text!r}")
    low = raw.strip().lower()
    if low in ("true", "false"):
        return key, low == "true"
    if low in ("none", "null"):
        return key, None
    try:
        val = ast.literal_eval(raw.strip())
        if isinstance(val, (int, float, str)):
            return key, val
    except (ValueError, SyntaxError):
        pass
    return key, raw.strip()


def _params_dict(pairs) -> dict:
    return dict(pairs or [])


def _split_fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return v


def _echo(quiet: bool):
    if quiet:
        return None
    return lambda s: print(s, flush=True)


# ------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="swnas",
        description="Stage-Wise Neural Architecture Search (Jordao et al., ICPR 2020).",
    )
    from swnas import __version__
    from swnas.search.config import CONTROL_CRITERIA, criterion_names, module_names

    criteria, modules = criterion_names(), module_names()

    p.add_argument("--version", action="version", version=f"swnas {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    _add_search_parser(sub)

    # report -------------------------------------------------------------------------------
    r = sub.add_parser(
        "report",
        help="tables and charts of a search (DIR/report/), or several searches compared",
        description="With one DIR: DIR/report/ (table, charts, ensemble). With two or more: the "
        "searches side by side (the paper's Table II layout) in --out-compare.",
    )
    r.add_argument("dir", metavar="DIR", nargs="+")
    r.add_argument("--no-ensemble", dest="no_ensemble", action="store_true", help="do not evaluate the ensemble")
    r.add_argument("--device", default="auto")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--html", action="store_true", help="also write DIR/report/report.html (self-contained; one DIR)")
    r.add_argument(
        "--out-compare",
        dest="out_compare",
        metavar="PATH",
        help="where a comparison of two or more DIRs goes (default: compare/ beside the first DIR); "
        "it must be new, empty or an earlier comparison",
    )

    # ensemble -----------------------------------------------------------------------------
    e = sub.add_parser("ensemble", help="accuracy of the averaged softmax of the candidates")
    e.add_argument("dir", metavar="DIR")
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true")

    _add_train_export_parsers(sub, modules)

    # score --------------------------------------------------------------------------------
    c = sub.add_parser("score", help="score a saved feature matrix")
    c.add_argument(
        "features",
        metavar="FEATURES",
        help=".npy, .npz (key X, features, or its only array), .csv or .parquet (header = feature names)",
    )
    c.add_argument(
        "labels",
        metavar="LABELS",
        nargs="?",
        help=".npy, .npz, .txt, .csv or .parquet (any label values); or use --label",
    )
    c.add_argument(
        "--label",
        metavar="COLUMN",
        help="the labels are this column of FEATURES (.csv/.parquet column, .npz key), not a file",
    )
    c.add_argument(
        "--criterion",
        default="pls",
        choices=[k for k in criteria if k not in CONTROL_CRITERIA],
        help="pls (default), inffs (unsupervised: ignores the labels) or ilfs",
    )
    c.add_argument("--backend", default="auto")
    c.add_argument("--param", dest="params", type=_param, action="append", metavar="KEY=VALUE")
    c.add_argument("--top", type=_nonneg_int, default=10, help="how many top features to list (default 10)")
    c.add_argument("--json", action="store_true")

    _add_paper_parser(sub)
    _add_study_parser(sub)

    # backends -----------------------------------------------------------------------------
    sub.add_parser("backends", help="scorer backends available here, and why the others are not")
    return p


_THREADS_HELP = (
    "CPU threads torch uses inside one operation (default: 1 for inputs of at most 32 px on the CPU, "
    "where more only slow down under load; torch's default otherwise); recorded in the run's environment"
)


def _add_study_parser(sub: Any) -> None:
    from swnas.experiments.study import ARMS, StudyConfig

    d = StudyConfig()
    st = sub.add_parser(
        "study",
        help="does the criterion beat chance, and does --inherit choose as well? (arms x seeds, resumable)",
        description="Run PLS and the random/uniform controls in inherit mode, PLS under the paper's "
        "protocol and uniform baselines, for several seeds, at one reduced scale; the same command "
        "continues an interrupted study. Writes OUT/summary.md, summary.csv and two plots.",
    )
    st.add_argument("--out", metavar="DIR", required=True)
    st.add_argument("--dataset", default=d.dataset)
    st.add_argument("--data", metavar="PATH")
    st.add_argument("--seeds", type=_int_list, default=d.seeds, help="comma-separated (default 0,1,2)")
    st.add_argument(
        "--arms",
        type=lambda v: [a for a in v.split(",") if a],
        default=d.arms,
        help=f"comma-separated subset of {','.join(ARMS)}",
    )
    st.add_argument("--subset", type=_positive_int, default=d.subset, help=f"training images (default {d.subset})")
    st.add_argument("--m0", type=_positive_int, default=d.m0)
    st.add_argument("--delta", type=_positive_int, default=d.delta)
    st.add_argument("--iterations", type=_positive_int, default=d.iterations)
    st.add_argument("--epochs", type=_positive_int, default=d.epochs)
    st.add_argument("--final-epochs", dest="final_epochs", type=_nonneg_int, default=None)
    st.add_argument("--inherit-epochs", dest="inherit_epochs", type=_positive_int, default=None)
    st.add_argument("--lr", type=_positive_float, default=d.lr)
    st.add_argument("--batch-size", dest="batch_size", type=_positive_int, default=d.batch_size)
    st.add_argument("--baseline-depths", dest="baseline_depths", type=_int_list, default=d.baseline_depths)
    st.add_argument("--device", default=d.device)
    st.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch intra-op threads (default: torch's); fix it to make runs comparable",
    )
    st.add_argument("--quiet", action="store_true")


def _int_list(v: str) -> list[int]:
    try:
        return [int(x) for x in v.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {v!r}") from None


def _add_paper_parser(sub: Any) -> None:
    from swnas.paper.runner import TABLE_RUNNERS

    pp = sub.add_parser(
        "paper",
        help="run a table of the paper (resumable) and write it beside the published one",
        description="Run every search and training a paper table needs under --out (reusing what "
        "it holds) and write OUT/TABLE.md and OUT/TABLE.csv with the published rows.",
    )
    pp.add_argument("table", choices=sorted(TABLE_RUNNERS))
    pp.add_argument(
        "--dataset", default=None, help="the searches' dataset (default cifar10; imagefolder for the imagenet table)"
    )
    pp.add_argument(
        "--data",
        metavar="PATH",
        help="where the dataset is (imagenet: an image folder with "
        "train/<class>/ and val/<class>/, streamed from disk)",
    )
    pp.add_argument("--out", metavar="DIR", required=True)
    pp.add_argument("--smoke", action="store_true", help="shrink every run (1 epoch, 1 iteration, m0 1, 300 images)")
    pp.add_argument("--recipe", default="paper")
    pp.add_argument("--seed", type=_nonneg_int, default=0)
    pp.add_argument("--device", default="auto")
    pp.add_argument(
        "--target-dataset",
        help="table6: the dataset the found architectures are trained on (digits, cifar10, imagefolder, imagenet32)",
    )
    pp.add_argument("--target-data", metavar="PATH", help="table6: where the target dataset is")
    pp.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME[=PATH]",
        help="table6: a target dataset, repeatable to run both of the paper's in one command: "
        "tinyimagenet=DIR (an image folder, 64 px) and imagenet32=DIR (the npz release); any other "
        "loader name (digits, cifar10, imagefolder) adds an extra target",
    )
    pp.add_argument(
        "--inherit",
        action="store_true",
        help="run the table's searches in inherit mode (not the "
        "paper's protocol; rows labelled '(inherit)', never matched to a published row; "
        "writes OUT/TABLE-inherit.md)",
    )
    pp.add_argument("--quiet", action="store_true")


def _option_kwargs(opt: Any) -> dict:
    """argparse keywords of a search option's flag, from its kind (:data:`swnas.search.config.KINDS`)."""
    kw: dict[str, Any] = {} if opt.metavar is None else {"metavar": opt.metavar}
    if opt.kind == "flag":
        kw["action"] = "store_true"
    elif opt.kind == "int":
        if opt.minimum not in (0, 1):
            raise ValueError(f"{opt.flag}: the command line parses integers >= 0 or >= 1, not >= {opt.minimum}")
        kw["type"] = _nonneg_int if opt.minimum == 0 else _positive_int
    elif opt.kind == "float":
        kw["type"] = _positive_float
    elif opt.kind == "fraction":
        kw["type"] = _split_fraction
    elif opt.kind == "params":
        kw.update(type=_param, action="append", metavar="KEY=VALUE")
    elif opt.kind == "choice":
        kw["choices"] = tuple(opt.choices())
    return kw


def _add_search_parser(sub: Any) -> None:
    # search -------------------------------------------------------------------------------
    s = sub.add_parser(
        "search",
        help="run Algorithm 1 (2n+1 networks for n iterations)",
        description="Run the stage-wise search. Unset options take the paper's defaults; with --resume "
        "they come from the stored run; a different value is accepted only where nothing already computed "
        "depends on it (see docs/reliability.md).",
        argument_default=S,
    )
    from swnas.search.config import SEARCH_OPTIONS

    for opt in SEARCH_OPTIONS:  # every option of SearchConfig, declared there once
        s.add_argument(opt.flag, dest=opt.name, help=opt.help, **_option_kwargs(opt))
    s.add_argument("--out", metavar="DIR", help="state directory (default runs/search)")
    s.add_argument("--resume", metavar="DIR", help="continue the search stored in DIR")
    s.add_argument("--no-report", dest="no_report", action="store_true", help="skip the report at the end")
    s.add_argument("--quiet", action="store_true", help="print only the result")
    _scale_flags(s, search=True)  # paper-scale options (docs/scale.md)


def _add_train_export_parsers(sub: Any, modules: Sequence[str]) -> None:
    # train --------------------------------------------------------------------------------
    t = sub.add_parser("train", help="train one architecture from scratch (a found one, or a uniform baseline)")
    t.add_argument("--spec", metavar="SPEC.json", help="architecture JSON (e.g. DIR/specs/04-A2.json)")
    t.add_argument("--module", choices=modules, help="with --stages: a uniform network")
    t.add_argument("--stages", type=_stage_list, help="modules per stage, e.g. 7,7,7 (ResNet-44)")
    t.add_argument("--dataset", default="digits")
    t.add_argument("--data", metavar="PATH")
    t.add_argument("--subset", type=_positive_int)
    t.add_argument("--recipe", default="paper")
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--batch-size", dest="batch_size", type=_positive_int)
    t.add_argument("--lr", type=_positive_float)
    t.add_argument("--seed", type=_nonneg_int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--name", help="label in reports (default: from the architecture)")
    t.add_argument("--out", metavar="DIR", required=True, help="where model.pt and train.json go")
    t.add_argument("--force", action="store_true", help="replace the model.pt/train.json already in --out")
    t.add_argument("--threads", type=_positive_int, default=None, help=_THREADS_HELP)
    t.add_argument("--quiet", action="store_true")
    _scale_flags(t, search=False)

    # export -------------------------------------------------------------------------------
    x = sub.add_parser("export", help="write a candidate as one file loadable with swnas.models.load")
    x.add_argument("dir", metavar="DIR")
    x.add_argument(
        "--candidate",
        default="best",
        metavar="best|last|A1|A2|...",
        help="which candidate, named as in the report (default best: the highest validation accuracy; "
        "the last candidate when the search had no validation split)",
    )
    x.add_argument("--to", metavar="PATH", required=True)
    x.add_argument("--torchscript", action="store_true", help="also write PATH with suffix .torchscript.pt")
    x.add_argument(
        "--onnx",
        action="store_true",
        help='also write PATH with suffix .onnx (needs the onnx extra: pip install "swnas[onnx]")',
    )
    x.add_argument(
        "--normalize-inputs",
        dest="normalize_inputs",
        action="store_true",
        help="the TorchScript/ONNX files take images in [0, 1] (NCHW) and normalise them as in training",
    )
    x.add_argument(
        "--force",
        action="store_true",
        help="replace existing files at PATH (never a search's own files, never a device or other special file)",
    )


def _scale_flags(p: argparse.ArgumentParser, search: bool) -> None:
    """Options for long runs at paper scale (E; see docs/scale.md)."""
    from swnas.records.logs import LEVELS
    from swnas.records.tracking import TRACKERS

    if not search:  # search: --input-size, --workers and --sync-bn come from the option table
        p.add_argument(
            "--input-size",
            dest="input_size",
            type=_positive_int,
            metavar="PX",
            default=None,
            help="image side for imagefolder data (224 for ImageNet; streamed from disk)",
        )
        p.add_argument(
            "--workers", type=_nonneg_int, help="DataLoader processes decoding streamed images (default 4)", default=4
        )
        p.add_argument("--sync-bn", dest="sync_bn", action="store_true", help="SyncBatchNorm under torchrun (DDP)")
    p.add_argument(
        "--log-level",
        dest="log_level",
        type=str.lower,
        choices=LEVELS,
        help="threshold of the swnas logger (default info)",
        **cast("dict[str, Any]", {} if search else {"default": "info"}),
    )
    if search:
        p.add_argument("--config", metavar="RUN.yaml", help="options from a YAML or JSON file; flags override it")
        p.add_argument("--track", type=str.lower, choices=TRACKERS, help="also log to tensorboard, mlflow or jsonl")
        p.add_argument("--html", action="store_true", help="also write report/report.html")


# ------------------------------------------------------------------------------------- commands
def _search_opts() -> tuple[str, ...]:
    """The names of a search's options (:data:`swnas.search.config.SEARCH_OPTIONS`)."""
    from swnas.search.config import SEARCH_OPTIONS

    return tuple(o.name for o in SEARCH_OPTIONS)


# options of one session (not stored in search.json) that a --config file may also hold
_SESSION_OPTS = ("out", "log_level", "track", "html", "no_report", "quiet")


def _with_config_file(ns: argparse.Namespace, given: dict) -> dict:
    """Merge ``--config FILE`` under the flags; session options land on ``ns`` unless given as flags."""
    if not hasattr(ns, "config"):
        return given
    from swnas.config_file import load_config, merge_options

    opts = load_config(ns.config, _search_opts() + _SESSION_OPTS)
    for k in _SESSION_OPTS:
        if k in opts:
            v = opts.pop(k)
            _check_session_option(ns.config, k, v)
            if not hasattr(ns, k):
                setattr(ns, k, v)
    return merge_options(opts, given)


def _check_session_option(path: str, key: str, value: Any) -> None:
    """A session option from a config file has the type its flag would give it."""
    if key in ("html", "no_report", "quiet"):
        ok = isinstance(value, bool)
        want = "true or false"
    elif key in ("log_level", "track"):
        ok = value is None or isinstance(value, str)
        want = "a name"
    else:  # out
        ok = isinstance(value, str) and value != ""
        want = "a directory path"
    if not ok:
        shown = repr(value)
        raise InputError(
            f"config: {path}: {key} must be {want}, got {shown if len(shown) <= 60 else shown[:57] + '...'}"
        )


def _remove_untrained(out: Path) -> None:
    """Remove ``out``, made by this command, if the refused search trained nothing in it.

    Anything trained (a checkpoint, an epoch of a network in progress, a network in the state)
    keeps the whole directory, so that ``--resume`` can continue it.
    """
    import shutil

    from swnas.search.config import STATE_FILE

    for sub in ("checkpoints", "training"):
        if (out / sub).is_dir() and any(p.is_file() for p in (out / sub).rglob("*")):
            return
    if (out / STATE_FILE).exists():
        try:
            doc = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(doc, dict) or doc.get("networks"):
            return
    shutil.rmtree(out, ignore_errors=True)


def cmd_search(ns: argparse.Namespace) -> int:
    from swnas.search import SearchConfig, resume_config, run_search

    from swnas.search.config import SEARCH_OPTIONS

    given = {o.name: getattr(ns, o.name) for o in SEARCH_OPTIONS if hasattr(ns, o.name)}
    for o in SEARCH_OPTIONS:
        if o.kind == "params" and o.name in given:
            given[o.name] = _params_dict(given[o.name])
    given = _with_config_file(ns, given)
    quiet = getattr(ns, "quiet", False)
    resume = getattr(ns, "resume", None)
    if resume is not None:
        out = Path(resume)
        if hasattr(ns, "out") and Path(ns.out).resolve() != out.resolve():
            raise InputError(f"--out {ns.out}: differs from --resume {resume}; the resumed run lives in {resume}")
        if given.get("stop_early") is False:
            given.pop("stop_early")
        cfg = resume_config(out, given)
    else:
        out = Path(getattr(ns, "out", "runs/search"))
        cfg = SearchConfig(**given)
    from swnas.training import distributed as dist
    from swnas.search.session import search_session  # logging, --track, OUT/config.yaml
    from swnas.search.validate import validate_options

    from swnas.search.opening import fresh_allowed, lock_out

    validate_options(cfg.resolved())  # a refused option leaves nothing in OUT (run_search checks again)
    from swnas.records.tracking import check_tracker

    check_tracker(getattr(ns, "track", None))  # a missing --track package is refused before OUT exists
    main = os.environ.get("RANK", "0") in ("", "0")  # the process group is joined later, in the toolkit
    # the lock first: nothing in OUT is written (config.yaml, search.log, --track files) or removed
    # unless this command holds it, so a refused second run never touches the run that holds it
    made_out = resume is None and not out.exists() and not out.is_symlink()
    lock = lock_out(out, resume is not None) if main else None
    try:
        if main and resume is None:
            fresh_allowed(out)  # before the session rewrites config.yaml of a search that trained
        try:
            with search_session(cfg, out, ns, quiet):
                res = run_search(cfg, out, resume=resume is not None, echo=_echo(quiet), lock=lock)
        except (SwnasError, FloatingPointError):  # refused once the data was seen, or diverged at once
            if made_out and main:
                _remove_untrained(out)  # still under this command's lock
            raise
    finally:
        if lock is not None:
            lock.release()

    if not dist.is_main():
        return 0
    from swnas.reporting.report import describe_candidate
    from swnas.search import candidate_name

    final = res.networks[res.final]
    names = [candidate_name(res.networks[i]) for i in res.candidates]
    span = f"{names[0]}..{names[-1]}" if len(names) > 1 else (names[0] if names else "none")
    print(
        f"search {res.status}: {len(res.networks)} networks trained, {len(res.candidates)} candidates "
        f"({span}; A0 is the starting network)"
    )
    print(f"found architecture (last A): {describe_candidate(res.state, res.final)}  spec: {out / final['spec']}")
    cost = res.state.get("cost")
    if isinstance(cost, dict) and cost.get("ratio") is not None:
        print(
            f"training cost: {cost['images_trained']:,} images, {cost['ratio']:.2f}x what the paper's protocol trains "
            f"at these settings ({cost['paper_protocol_images']:,})"
        )
    if res.best is not None:
        best = res.networks[res.best]
        print(
            f"best candidate (highest validation accuracy): {describe_candidate(res.state, res.best)}  "
            f"spec: {out / best['spec']}"
        )
    else:
        print(
            "no best candidate: no validation accuracy was measured (--val-split 0); the test accuracy above is "
            "reported only, never used to choose"
        )
    if not getattr(ns, "no_report", False):
        from swnas.reporting.report import write_report

        rep = write_report(out, ensemble=True, device=cfg.device, echo=_echo(quiet))
        if rep.ensemble is not None:
            from swnas.reporting.report import ensemble_line

            print(ensemble_line(rep.ensemble, res.state))
        print(f"report: {rep.table_md} (also {', '.join(p.name for p in [rep.table_csv, *rep.charts])})")
        if getattr(ns, "html", False):
            from swnas.reporting.html import write_html

            print(f"HTML report: {write_html(out, ensemble=rep.ensemble)}")
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from swnas.reporting.report import write_report

    if len(ns.dir) > 1:
        return _cmd_compare(ns)
    if ns.out_compare is not None:
        raise InputError("--out-compare: a comparison needs two or more DIRs")
    ns.dir = ns.dir[0]
    rep = write_report(ns.dir, ensemble=not ns.no_ensemble, device=ns.device, echo=_echo(ns.quiet))
    print(rep.markdown)
    print(f"report written to {rep.directory}: {', '.join(p.name for p in [rep.table_md, rep.table_csv, *rep.charts])}")
    if ns.html:
        from swnas.reporting.html import write_html

        print(f"HTML report: {write_html(ns.dir, ensemble=rep.ensemble)}")
    return 0


def _cmd_compare(ns: argparse.Namespace) -> int:
    from swnas.reporting.compare import compare_searches

    if ns.html:
        raise InputError("--html: applies to the report of one DIR, not to a comparison")
    cmp = compare_searches(ns.dir, ns.out_compare)
    if not ns.quiet:
        print(cmp.markdown)
    print(
        f"comparison of {len(cmp.searches)} searches written to {cmp.directory}: {cmp.table_md.name}, "
        f"{cmp.table_csv.name}, {cmp.depth_png.name}"
    )
    return 0


def cmd_ensemble(ns: argparse.Namespace) -> int:
    from swnas.reporting.ensemble import ensemble_search

    r = ensemble_search(ns.dir, device=ns.device)
    if ns.json:
        print(json.dumps(r.to_dict(), indent=2))
    else:
        print(
            f"ensemble of {len(r.members)} candidates on {r.n_test} test images: "
            f"top-1 {100 * r.top1:.2f}%, top-5 {100 * r.top5:.2f}% "
            f"(best single {100 * max(r.member_top1):.2f}%)"
        )
    return 0


def cmd_train(ns: argparse.Namespace) -> int:
    from swnas.experiments.train_architecture import train_architecture
    from swnas.records.logs import setup_logging

    setup_logging("warning" if ns.quiet and ns.log_level == "info" else ns.log_level)  # E

    if ns.spec is None and ns.stages is None:
        raise InputError("train: give --spec SPEC.json or --stages (with --module) to describe the architecture")
    if ns.spec is not None and ns.stages is not None:
        raise InputError("train: give either --spec or --stages, not both")
    res = train_architecture(
        spec=ns.spec,
        module=ns.module or "basic",
        stages=ns.stages,
        dataset=ns.dataset,
        data=ns.data,
        subset=ns.subset,
        recipe=ns.recipe,
        epochs=ns.epochs,
        batch_size=ns.batch_size,
        lr=ns.lr,
        seed=ns.seed,
        device=ns.device,
        out=ns.out,
        name=ns.name,
        progress=not ns.quiet,
        force=ns.force,
        input_size=ns.input_size,
        workers=ns.workers,
        sync_bn=ns.sync_bn,
        threads=ns.threads,
    )
    m = res["metrics"]
    print(
        f"{res['name']}: stages {res['stages']}, top-1 {100 * m['top1']:.2f}%, {m['params']} params, "
        f"{m['macs']} MACs; saved {Path(ns.out) / 'model.pt'}"
    )
    return 0


def cmd_export(ns: argparse.Namespace) -> int:
    from swnas.reporting.report import describe_candidate, export_candidate
    from swnas.search import load_state, pick_candidate

    paths = export_candidate(
        ns.dir,
        ns.candidate,
        ns.to,
        torchscript=ns.torchscript,
        onnx=ns.onnx,
        normalize_inputs=ns.normalize_inputs,
        force=ns.force,
    )
    state = load_state(ns.dir)
    print(f"exported {describe_candidate(state, pick_candidate(state, ns.candidate))}")
    for p in paths:
        print(f"wrote {p}")
    return 0


def cmd_score(ns: argparse.Namespace) -> int:
    import numpy as np

    from swnas.scoring.files import load_features, load_labelled, load_labels
    from swnas.scoring import score

    if ns.labels is not None and ns.label is not None:
        raise InputError("give the labels as LABELS or as --label COLUMN, not both")
    from swnas.scoring.api import criteria, get_criterion

    crit = get_criterion(ns.criterion)
    unsupervised = not crit.needs_labels
    if ns.labels is None and ns.label is None and not unsupervised:
        unlabelled = " or ".join(c for c in criteria() if not get_criterion(c).needs_labels)
        raise InputError(
            "give the labels: a LABELS file, or --label COLUMN of FEATURES "
            f"(only --criterion {unlabelled}, which ignores labels, needs none)"
        )
    if ns.label is not None:
        table, y = load_labelled(ns.features, ns.label)
    else:
        table = load_features(ns.features)
        if ns.labels is not None:
            y = load_labels(ns.labels, n_samples=table.X.shape[0])
        else:  # the criterion reads no labels (the input check wants two classes)
            y = np.arange(table.X.shape[0]) % 2
    X = table.X
    note = f"{crit.title} is unsupervised: it ignores the labels" if unsupervised else None
    res = score(X, y, criterion=ns.criterion, backend=ns.backend, **_params_dict(ns.params))
    order = np.argsort(-res.features, kind="stable")[: ns.top]
    if ns.json:
        print(
            json.dumps(
                {
                    "criterion": res.criterion,
                    "backend": res.backend,
                    "params": res.params,
                    "stage": res.stage,
                    "n_samples": int(X.shape[0]),
                    "n_features": int(X.shape[1]),
                    "note": note,
                    "top": [
                        {"feature": int(i), "name": table.name(int(i)), "score": float(res.features[i])} for i in order
                    ],
                    "features": [float(v) for v in res.features],
                },
                indent=2,
                default=str,
            )
        )
        return 0
    print(
        f"criterion {res.criterion} (backend {res.backend}, params {res.params}) on {X.shape[0]} samples x "
        f"{X.shape[1]} features"
    )
    if note:
        print(f"note: {note}")
    print(f"stage score: {res.stage:.6g}")
    if len(order):
        print(f"top {len(order)} features:")
        for rank, i in enumerate(order, 1):
            name = f"  {table.names[i]}" if table.names is not None else ""
            print(f"  {rank:3d}. feature {int(i):6d}{name}  {res.features[i]:.6g}")
    return 0


def cmd_backends(ns: argparse.Namespace) -> int:
    from swnas.scoring import BACKENDS, available_backends, backend_status

    avail = available_backends()
    print("available: " + ", ".join(avail))
    for b in BACKENDS:
        ok, why = backend_status(b)
        print(f"  {b:6s} {'yes' if ok else 'no '}  {'' if ok else why}".rstrip())
    return 0


def cmd_paper(ns: argparse.Namespace) -> int:
    from swnas.paper.tables_4_to_6 import parse_target
    from swnas.paper.runner import PaperSettings, run_table

    dataset = ns.dataset or ("imagefolder" if ns.table == "imagenet" else "cifar10")
    st = PaperSettings(
        dataset=dataset,
        data=ns.data,
        out=Path(ns.out),
        smoke=ns.smoke,
        device=ns.device,
        recipe=ns.recipe,
        seed=ns.seed,
        echo=_echo(ns.quiet),
        target_dataset=ns.target_dataset,
        target_data=ns.target_data,
        inherit=ns.inherit,
        targets=tuple(parse_target(t) for t in ns.target),
    )
    md, csv_path = run_table(ns.table, st)
    print(md.read_text())
    print(f"wrote {md} and {csv_path}")
    return 0


def cmd_study(ns: argparse.Namespace) -> int:
    from swnas.experiments.study import StudyConfig, run_study

    if ns.threads is not None:
        from swnas.training.threads import apply_threads

        apply_threads(ns.threads, ns.dataset)
    cfg = StudyConfig(
        dataset=ns.dataset,
        data=ns.data,
        seeds=ns.seeds,
        arms=ns.arms,
        subset=ns.subset,
        m0=ns.m0,
        delta=ns.delta,
        iterations=ns.iterations,
        epochs=ns.epochs,
        final_epochs=ns.final_epochs,
        inherit_epochs=ns.inherit_epochs,
        lr=ns.lr,
        batch_size=ns.batch_size,
        baseline_depths=ns.baseline_depths,
        device=ns.device,
    )
    path = run_study(cfg, ns.out, echo=_echo(ns.quiet))
    print(path.read_text())
    return 0


_COMMANDS = {
    "study": cmd_study,
    "search": cmd_search,
    "report": cmd_report,
    "ensemble": cmd_ensemble,
    "train": cmd_train,
    "export": cmd_export,
    "score": cmd_score,
    "backends": cmd_backends,
    "paper": cmd_paper,
}


def _search_dir(ns: argparse.Namespace) -> str:
    return str(getattr(ns, "resume", None) or getattr(ns, "out", "runs/search"))


#: commands that work with ``pip install .`` alone (no PyTorch); the others need the ``search`` extra
SCORER_COMMANDS = ("score", "backends")
#: top-level modules that the ``search`` extra installs (pyproject.toml)
_SEARCH_EXTRA_MODULES = ("torch", "torchvision", "tqdm", "matplotlib", "yaml")
_SEARCH_EXTRA_HINT = 'pip install "swnas[search]" (from a source tree: pip install ".[search]")'


def _missing_search_extra(command: str) -> str | None:
    """The error for a command that needs PyTorch where it is not installed, else ``None``."""
    import importlib.util

    if command in SCORER_COMMANDS:
        return None
    try:
        if importlib.util.find_spec("torch") is not None:
            return None
    except (ImportError, ValueError):  # a finder that refuses it, or torch half-imported
        pass
    return (
        f"this command needs PyTorch, which the scorer-only install (pip install .) leaves out; "
        f"install the search extra: {_SEARCH_EXTRA_HINT}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``swnas`` command (and ``python -m swnas``); returns the exit status.

    Only the commands that need it import PyTorch: ``swnas score`` and ``swnas backends`` run with
    ``pip install .`` alone; the others say which extra to install when PyTorch is missing.
    """
    parser = build_parser()
    ns = parser.parse_args(list(argv) if argv is not None else None)  # argparse exits 2 on bad flags
    missing = _missing_search_extra(ns.command)
    if missing is not None:
        print(f"swnas {ns.command}: error: {missing}", file=sys.stderr)
        return 1
    try:
        return _COMMANDS[ns.command](ns)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _SEARCH_EXTRA_MODULES:
            raise
        print(
            f"swnas {ns.command}: error: this command needs {exc.name}, which the scorer-only install "
            f"(pip install .) leaves out; install the search extra: {_SEARCH_EXTRA_HINT}",
            file=sys.stderr,
        )
        return 1
    except SwnasError as exc:
        from swnas.errors import WriteError

        hint = ""
        if isinstance(exc, WriteError) and ns.command == "search":
            hint = f"; the search continues with `swnas search --resume {_search_dir(ns)}`"
        print(f"swnas {ns.command}: error: {exc}{hint}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:  # the trainer's divergence report (names the epoch)
        lr = getattr(ns, "lr", None)
        hint = f", e.g. --lr {lr / 10:g}" if isinstance(lr, float) else " with --lr"
        print(f"swnas {ns.command}: error: training diverged: {exc}{hint}", file=sys.stderr)
        return 1
    except OSError as exc:  # disk full, read-only file system, permissions: say which file, no traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"swnas {ns.command}: error: cannot read or write a file{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ""
        if ns.command == "search":
            hint = f"; continue with `swnas search --resume {_search_dir(ns)}`"
        print(f"swnas {ns.command}: interrupted{hint}", file=sys.stderr)
        return 130
