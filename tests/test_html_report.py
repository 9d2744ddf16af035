"""The HTML report is one self-contained file holding the search's numbers, decisions and curves."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from swnas.reporting.fmt import score_pair
from swnas.reporting.html import render_html, write_html
from swnas.reporting.report import write_report
from swnas.search import SearchConfig, Toolkit, run_search

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _toolkit() -> Toolkit:
    def train(m, seed):
        hist = [
            {"epoch": e, "loss": 2.0 / e, "acc": 0.2 * e, "lr": 0.1, "seconds": 1.0, "images_per_second": 9.0}
            for e in (1, 2, 3)
        ]
        return {"top1": 0.8 + 0.01 * m["stages"][0], "top5": 0.99, "seconds": 0.5, "epochs": 3, "history": hist}

    return Toolkit(
        build=lambda stages, seed: {"stages": list(stages), "seed": seed},
        train=train,
        score=lambda m: [float(s) if i == 0 else -float(s) for i, s in enumerate(m["stages"])],
        measure=lambda m, seconds: {
            "depth": 2 * sum(m["stages"]) + 2,
            "params": 1000 * sum(m["stages"]),
            "macs": 5000 * sum(m["stages"]),
            "memory": 1,
            "peak_memory": 1,
            "latency": 0.1,
            "carbon": 1e-6,
        },
        save=lambda m, p: Path(p).write_text(json.dumps(m)),
        load=lambda p: json.loads(Path(p).read_text()),
        spec=lambda m: {"stages": m["stages"]},
    )


class _Audit(HTMLParser):
    """Collects open/close tags, resource references and text."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.refs: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.refs.append(v)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def searched(tmp_path):
    out = tmp_path / "run"
    run_search(
        SearchConfig(iterations=2, stages=3, m0=1, delta=1, dataset="digits"), out, toolkit=_toolkit(), echo=None
    )
    state = json.loads((out / "search.json").read_text())
    for n in state["networks"]:  # the per-epoch history that the real trainer records
        n["history"] = _toolkit().train({"stages": n["stages"]}, 0)["history"]
    state["environment"] = {"torch": "9.9.9-test", "world_size": 1}
    (out / "search.json").write_text(json.dumps(state))
    return out, state


def test_html_is_self_contained_and_holds_the_search(searched):
    out, state = searched
    write_report(out, ensemble=False)
    path = write_html(out)
    assert path == out / "report" / "report.html"
    page = path.read_text()
    audit = _Audit()
    audit.feed(page)
    audit.close()
    assert not audit.errors and not audit.stack
    # nothing outside the file: every image is a data: URI that decodes to a PNG
    assert audit.refs and all(r.startswith("data:image/png;base64,") for r in audit.refs)
    for r in audit.refs:
        assert base64.b64decode(r.split(",", 1)[1])[:8] == PNG_MAGIC
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert audit.tags.count("img") == 4  # curves + the three report charts (depths, accuracy, per-stage scores)
    text = " ".join(audit.text)
    for it in state["iterations"]:
        for c in it["comparisons"]:
            assert all(v in text for v in score_pair(c["score_A"], c["score_T"]))
    assert text.count("grow") >= sum(len(it["grown"]) for it in state["iterations"])
    for i in state["candidates"]:
        assert f"{100 * state['networks'][i]['metrics']['top1']:.2f}" in text
    assert "9.9.9-test" in text and "digits" in text


def test_html_escapes_and_says_what_is_missing():
    state = {"config": {"dataset": "<b>x</b>"}, "networks": [], "candidates": [], "iterations": []}
    page = render_html(state, [])
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "No per-epoch history" in page and "No iteration scored yet" in page and "Not recorded" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (the structure test runs)")
def test_html_opens_in_headless_chromium(searched, tmp_path):
    out, _ = searched
    path = write_html(out)
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0
    assert "Decisions per iteration" in done.stdout and "9.9.9-test" in done.stdout
