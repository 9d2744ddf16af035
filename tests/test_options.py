"""The option table of a search: every :class:`SearchConfig` field is declared once with its flag,
kind, what it changes and its ``--resume`` rule, and the command line, config files, the checks of
``resolved()`` and the resume rules all follow the table."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from swnas.cli import _search_opts, build_parser
from swnas.errors import InputError
from swnas.search import state as S
from swnas.search.config import (
    CHANGES,
    GENERIC_KINDS,
    KINDS,
    OPTIONS_BY_NAME,
    RESUME,
    SEARCH_OPTIONS,
    SearchConfig,
    _search_options,
    option,
)


def test_every_field_of_searchconfig_is_in_the_table_with_every_attribute():
    fields = dataclasses.fields(SearchConfig)
    assert [o.name for o in SEARCH_OPTIONS] == [f.name for f in fields]
    defaults = SearchConfig()
    for o in SEARCH_OPTIONS:
        assert o.flag.startswith("--") and o.help, o.name
        assert o.kind in KINDS and o.changes in CHANGES and o.resume in RESUME, o.name
        assert o.config_key == o.name
        assert o.default == getattr(defaults, o.name), o.name
        if o.kind == "int":
            assert o.minimum in (0, 1), o.name  # what the command line's integer parsers take
        if o.kind == "choice":
            assert callable(o.choices) and len(o.choices()) > 0, o.name
        if o.kind not in GENERIC_KINDS:
            assert o.custom_check, f"{o.name}: a {o.kind} option needs its own check in resolved()"
        if o.resume == "rule":
            assert o.name in S.RESUME_RULES, f"{o.name}: declared with its own --resume rule, but none is written"
    assert len({o.flag for o in SEARCH_OPTIONS}) == len(SEARCH_OPTIONS)


def test_a_field_declared_without_option_is_refused_by_name():
    @dataclasses.dataclass
    class Extended(SearchConfig):
        newthing: int = 3

    with pytest.raises(TypeError, match="'newthing' is not declared with option"):
        _search_options(Extended)

    @dataclasses.dataclass
    class Declared(SearchConfig):
        newthing: int = option(3, "--newthing", "int", "training", minimum=1, help="a new option")

    assert _search_options(Declared)[-1].resume == "until_trained"
    with pytest.raises(ValueError, match="--odd"):
        option(3, "--odd", "int", "everything", help="changes an unknown thing")


def test_the_resume_classes_are_those_the_table_declares():
    free = {o.name for o in SEARCH_OPTIONS if o.resume == "always"}
    assert set(S.RESUME_FREE) == free | {"quiet"}
    assert set(S._TRAINING) == {o.name for o in SEARCH_OPTIONS if o.changes == "training"}
    assert set(S._SCORING) == {o.name for o in SEARCH_OPTIONS if o.changes == "scoring"}
    assert set(S.RESUME_RULES) == {o.name for o in SEARCH_OPTIONS if o.resume == "rule"}
    # the rules as docs/reliability.md states them
    assert free == {"device", "backend", "workers", "threads"}
    assert set(S._SCORING) == {"criterion", "reduce", "score_params"}
    assert set(S.RESUME_RULES) == {"iterations", "stop_early", "final_epochs"}
    assert {"module", "m0", "seed", "dataset", "val_split", "inherit", "lr", "input_size"} <= set(S._TRAINING)


def _state(trained: int, scored: int) -> dict:
    return {"networks": [{"final": None}] * trained, "iterations": [{"stopped_early": False}] * scored}


@pytest.mark.parametrize("opt", SEARCH_OPTIONS, ids=lambda o: o.name)
def test_each_option_follows_its_resume_rule(opt):
    new, old = 1, 2
    assert S._resume_blockers(_state(0, 0), opt.name, new, old) is None  # nothing computed: anything goes
    blocked_trained = S._resume_blockers(_state(1, 0), opt.name, new, old)
    blocked_scored = S._resume_blockers(_state(3, 1), opt.name, new, old)
    if opt.resume == "until_trained":
        assert blocked_trained and "trained" in blocked_trained
    elif opt.resume == "until_scored":
        assert blocked_trained is None and blocked_scored and "scoring" in blocked_scored
    elif opt.resume == "rule":
        assert blocked_scored == S.RESUME_RULES[opt.name](_state(3, 1), new)


def test_an_option_with_rule_but_no_rule_written_is_refused_on_resume():
    assert "no --resume rule" in S._resume_blockers(_state(1, 1), "no_such_option", 1, 2)


def _search_actions() -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["search"]._actions}


def test_the_command_line_has_one_flag_per_option_as_declared():
    actions = _search_actions()
    assert _search_opts() == tuple(o.name for o in SEARCH_OPTIONS)
    for o in SEARCH_OPTIONS:
        a = actions[o.name]
        assert a.option_strings == [o.flag] and a.help == o.help, o.name
        if o.kind == "flag":
            assert isinstance(a, argparse._StoreTrueAction), o.name
        if o.kind == "choice":
            assert tuple(a.choices) == tuple(o.choices()), o.name
    assert "mbconv" in actions["module"].choices and "pls" in actions["criterion"].choices


@pytest.mark.parametrize(
    "argv, want",
    [
        (
            ["--m0", "3", "--val-split", "0.25", "--inherit", "--param", "n_components=3", "--lr", "0.5"],
            {"m0": 3, "val_split": 0.25, "inherit": True, "score_params": [("n_components", 3)], "lr": 0.5},
        ),
        (
            ["--iterations", "0", "--input-size", "64", "--workers", "0", "--sync-bn", "--cell", "keras"],
            {"iterations": 0, "input_size": 64, "workers": 0, "sync_bn": True, "cell": "keras"},
        ),
    ],
)
def test_flags_parse_into_the_options(argv, want):
    ns = build_parser().parse_args(["search", *argv])
    assert {k: v for k, v in vars(ns).items() if k in OPTIONS_BY_NAME} == want


@pytest.mark.parametrize(
    "opt", [o for o in SEARCH_OPTIONS if o.kind in GENERIC_KINDS and not o.custom_check], ids=lambda o: o.name
)
def test_resolved_checks_each_option_by_its_kind(opt):
    bad = {"name": 3, "path": 3, "choice": 3, "flag": "yes", "int": (opt.minimum or 0) - 1}[opt.kind]
    with pytest.raises(InputError, match=f"^{opt.name}: expected"):
        SearchConfig(**{"dataset": "digits", opt.name: bad}).resolved()
    if opt.kind == "int":
        with pytest.raises(InputError, match=f"^{opt.name}: expected"):
            SearchConfig(**{"dataset": "digits", opt.name: True}).resolved()
