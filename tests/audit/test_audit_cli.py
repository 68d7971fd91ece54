"""`carecontracts audit` end to end: the example's planted clock-stopping is found at its
provider and nowhere else; the published layouts shipped with the example are read, grouped,
and the planted truth found; groups that cannot be tested are skipped with a reason; bad input
gives located errors, exit 2 and no files; every README audit command runs."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"

from carecontracts.audit.run import audit_workspace  # noqa: E402
from carecontracts.cli import app  # noqa: E402
from carecontracts.examples.generate import CLOCK_STOPPER  # noqa: E402
from carecontracts.audit.readers import period_label  # noqa: E402
from carecontracts.examples.published import AE_EXAMPLE, RTT_EXAMPLE, ae_rows, rtt_rows, write_csv  # noqa: E402
from carecontracts.workspace import Workspace  # noqa: E402

runner = CliRunner()
EXAMPLE_ROWS = 200_000
README = Path(__file__).parents[2] / "README.md"


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit") / "example"
    assert invoke("init", root, "--rows", EXAMPLE_ROWS).exit_code == 0
    loaded = invoke("load", "-w", root)
    assert loaded.exit_code == 0, loaded.output
    return root


def test_example_audit_finds_the_clock_stopper_and_nothing_elsewhere(example: Path, tmp_path: Path) -> None:
    audit = audit_workspace(Workspace.open(example))
    assert {f.subject for f in audit.doubtful} == {CLOCK_STOPPER}
    assert {f.check for f in audit.doubtful} >= {"bunching", "discontinuity"}
    stopper = next(s for s in audit.subjects if s.subject == CLOCK_STOPPER)
    assert stopper.bunching is not None and stopper.bunching.significant and stopper.bunching.ratio > 1.5
    assert stopper.bunching.placebo is not None and stopper.bunching.placebo.rank == 1
    others = [s for s in audit.subjects if s.subject != CLOCK_STOPPER and s.bunching is not None]
    assert others and not any(s.bunching.significant for s in others if s.bunching)
    assert all(c.within_tolerance for c in audit.comparisons)  # the figures published reconcile with the records

    page = tmp_path / "audit.html"
    result = invoke("audit", "-w", example, "--html", page)
    assert result.exit_code == 0, result.output
    assert "bunching just under 18 weeks" in result.output and f"({CLOCK_STOPPER})" in result.output
    text = page.read_text()
    assert text.count("<svg") >= 4 and "http" not in text.split("<svg", 1)[0].replace("http-equiv", "")


def test_published_rtt_file_shipped_with_the_example_finds_the_planted_provider(example: Path, tmp_path: Path) -> None:
    path = example / "data" / "published" / RTT_EXAMPLE
    _, truth = rtt_rows(seed=20250401)  # the example's own seed: the truth planted in the file
    moved = truth.moved[(truth.clock_stopper, "Part_1A")]
    out = tmp_path / "findings.json"
    result = invoke("audit", "--file", path, "--where", "RTT Part Type=Part_1A", "--group", "provider", "--output", out)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    found = [f for f in document["findings"] if f["check"] == "bunching" and f["severity"] == "warning"]
    assert truth.clock_stopper in {f["subject"] for f in found}
    assert {f["subject"] for f in found} <= {truth.clock_stopper, "all"}  # no other provider
    mine = next(f for f in found if f["subject"] == truth.clock_stopper)
    assert mine["excess_low"] <= moved <= mine["excess_high"] and mine["placebo_rank"] == 1
    subject = next(s for s in document["subjects"] if s["subject"] == truth.clock_stopper)
    assert subject["bunching"]["window"] == [17.0, 18.0] and subject["bunching"]["interval"][0] > 0
    assert any("Christmas" in n for n in document["notes"])


def test_several_parts_without_a_filter_is_a_located_error_and_nothing_is_written(example: Path, tmp_path: Path) -> None:
    page, out = tmp_path / "a.html", tmp_path / "a.csv"
    result = invoke("audit", "--file", example / "data" / "published" / RTT_EXAMPLE, "--html", page, "--output", out)
    assert result.exit_code == 2
    assert "RTT Part Type" in result.output and "Part_1A" in result.output and "--where" in result.output
    assert not page.exists() and not out.exists()


def test_groups_that_cannot_be_tested_are_skipped_with_the_reason_and_the_rest_go_on(tmp_path: Path) -> None:
    rows, truth = ae_rows(seed=95, providers=120, months=24, nudgers=12)
    path = write_csv(tmp_path / "ae.csv", rows)
    # Two providers whose every month is far below 95%: their range never reaches the threshold.
    header = rows[0]
    attend, over = header.index("A&E attendances Type 1"), header.index("Attendances over 4hrs Type 1")
    for row in rows[1:]:
        if row[1] in ("Z01", "Z02"):
            row[over] = str(int(int(row[attend]) * 0.4))
    write_csv(path, rows)
    result = invoke("audit", "--file", path, "--threshold", 95, "--above", "--group", "provider", "--min-records", 20,
                    "--format", "csv", "--replicates", 60)
    assert result.exit_code == 0, result.output
    findings = list(csv.DictReader(io.StringIO(result.output)))
    by = {(f["subject"], f["check"]): f for f in findings}
    assert by[("Z01", "bunching")]["severity"] == "cannot test" and "outside the data's range" in by[("Z01", "bunching")]["title"] + by[("Z01", "bunching")]["sentence"]
    # Every provider has its bunching result or its own reason (24 months is too few for most).
    providers = {row[1] for row in rows[1:] if row[1] != "TOTAL"}
    assert len(providers) == 120
    assert {f["subject"] for f in findings if f["check"] == "bunching"} == providers | {"all"}
    reasons = {f["sentence"] for f in findings if f["check"] == "bunching" and f["severity"] == "cannot test"}
    assert reasons and all("nan" not in r and "inf" not in r for r in reasons)
    assert by[("all", "bunching")]["severity"] == "warning"  # the pooled provider-months bunch over 95%
    assert float(by[("all", "bunching")]["excess_low"]) > 0
    # Every provider has its own XmR chart of its monthly share.
    assert {f["subject"] for f in findings if f["check"] == "spc"} == providers | {"all"}


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("waits_weeks\nsoon\nlater\n", ("--value", "waits_weeks"), "'soon' is not a number"),
        ("waits_weeks\n\n\n", ("--value", "waits_weeks"), "no numeric values"),
        ("waits\n1\n", ("--value", "wait_weeks"), "no column 'wait_weeks'"),
        ("waits\n1\n", ("--value", "waits", "--where", "ward=A"), "no column 'ward'"),
        ("waits,ward\n1,A\n", ("--value", "waits", "--where", "ward=B"), "no rows left after the filters"),
        ("waits\n1\n", ("--value", "waits", "--format", "xml"), "'xml' is not a format"),
        ("waits\n1\n", ("--value", "waits", "--exclude", "14-12"), "runs backwards"),
        ("lower,upper,n\n0,1,5\n2,3,5\n1,2,5\n", ("--value", "lower", "--upper", "upper", "--count", "n", "--threshold", 2), "bins out of order"),
        ("lower,upper,n\n0,1,5\n1,2,-4\n2,3,5\n", ("--value", "lower", "--upper", "upper", "--count", "n", "--threshold", 2), "negative count"),
    ],
)
def test_bad_input_gives_located_errors_exit_2_and_no_files(tmp_path: Path, content: str, args: tuple[object, ...], message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    page, out = tmp_path / "out.html", tmp_path / "out.json"
    result = invoke("audit", "--file", path, *args, "--html", page, "--output", out)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not page.exists() and not out.exists()


def waits_file(path: Path, seed: int, planted: bool) -> Path:
    rng = np.random.default_rng(seed)
    weeks = np.floor((7 + rng.gamma(2.0, 40.0, 4_000)) / 7) + 1  # completed weeks, 1 to …
    if planted:
        moved = (weeks > 18) & (weeks <= 22) & (rng.random(4_000) < 0.5)
        weeks[moved] = 18
    path.write_text("patient,waits_weeks\n" + "".join(f"P{i},{w:g}\n" for i, w in enumerate(weeks)))
    return path


def test_patient_level_file_with_and_without_bunching(tmp_path: Path) -> None:
    result = invoke("audit", "--file", waits_file(tmp_path / "waits.csv", 1, True), "--value", "waits_weeks", "--threshold", 18, "--id", "patient",
                    "--replicates", 100)
    assert result.exit_code == 0, result.output
    assert "times as many patients waited 17–18 weeks as 18–19 weeks" in result.output
    assert "bunching just under 18 weeks" in result.output
    smooth = invoke("audit", "--file", waits_file(tmp_path / "smooth.csv", 2, False), "--value", "waits_weeks", "--threshold", 18, "--replicates", 100)
    assert smooth.exit_code == 0 and "0 findings to explain" in smooth.output


def test_a_threshold_beyond_the_data_is_not_tested_and_says_why(tmp_path: Path) -> None:
    result = invoke("audit", "--file", waits_file(tmp_path / "waits.csv", 3, False), "--value", "waits_weeks", "--threshold", 180)
    assert result.exit_code == 0, result.output
    assert "cannot test" in result.output and "outside the data's range" in result.output


def test_help_teaches_the_rules_and_the_options() -> None:
    result = invoke("audit", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for words in ("placebo", "negative binomial", "--where", "--min-records", "--baseline", "--phase", "--chart", "Laney", "p-chart", "--format", "Christmas",
                  "cannot test", "Examples"):
        assert words in text, words


def readme_commands() -> list[str]:
    section = README.read_text().split("## Audit", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.startswith("carecontracts audit")]


def test_every_readme_audit_command_runs_on_the_example(example: Path, tmp_path: Path) -> None:
    commands = readme_commands()
    assert len(commands) >= 4
    for command in commands:
        args = shlex.split(command)[1:]
        args = [a.replace("example/", f"{example}/") if a.startswith("example/") else (str(example) if a == "example" else a) for a in args]
        args = [str(tmp_path / a) if a.endswith((".html", ".csv", ".json")) and not a.startswith(str(example)) else a for a in args]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{command}\n{result.output}"


def test_ae_charts_are_laney_p_prime_by_default_xmr_when_asked_and_say_why(tmp_path: Path) -> None:
    rows, _ = ae_rows(seed=7, providers=4, months=24, nudgers=0)
    path = write_csv(tmp_path / "ae.csv", rows)
    out, page = tmp_path / "ae.json", tmp_path / "ae.html"
    result = invoke("audit", "--file", path, "--threshold", 95, "--above", "--group", "provider", "--min-records", 10_000, "--output", out, "--html", page)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    charts = {s["subject"]: s["chart"] for s in document["subjects"]}
    pooled = charts["all"]
    # Hundreds of thousands of attendances a month: binomial limits would be a fraction of a point
    # wide, and the months differ by points, so σ_z is far over 1 and Laney's correction is used.
    assert pooled["kind"] == "p′ (Laney)" and pooled["phases"][0]["sigma_z"] > 5 and "over 1" in pooled["why"]
    body = [r for r in rows[1:] if r[1] != "TOTAL"]
    header = rows[0]
    attend = [header.index(c) for c in header if c.startswith("A&E attendances")]
    by_month: dict[str, int] = {}
    for r in body:
        by_month[period_label(r[0])] = by_month.get(period_label(r[0]), 0) + sum(int(r[i]) for i in attend)
    assert pooled["denominators"] == [by_month[label] for label in pooled["labels"]]  # each month's own attendances
    spc = [f for f in document["findings"] if f["check"] == "spc" and f["subject"] == "all"]
    assert spc and all("p′-chart (Laney)" in f["sentence"] and f["chart"] == "p′ (Laney)" for f in spc)
    assert "p′ (Laney) chart" in page.read_text()
    xmr_out = tmp_path / "xmr.json"
    result = invoke("audit", "--file", path, "--threshold", 95, "--above", "--group", "provider", "--min-records", 10_000, "--chart", "xmr", "--output", xmr_out)
    assert result.exit_code == 0, result.output
    assert {s["chart"]["kind"] for s in json.loads(xmr_out.read_text())["subjects"]} == {"XmR"}


def test_a_p_chart_of_figures_with_no_counts_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "figures.csv"
    path.write_text("provider,month,percent\n" + "".join(f"A,2025-{m:02d},{90 + m % 3}\n" for m in range(1, 13)))
    out = tmp_path / "out.json"
    result = invoke("audit", "--file", path, "--value", "percent", "--period", "month", "--threshold", 95, "--above", "--chart", "p", "--output", out)
    assert result.exit_code == 2 and "--chart" in result.output and "count behind each period" in result.output and not out.exists()
    result = invoke("audit", "--file", path, "--value", "percent", "--period", "month", "--threshold", 95, "--above", "--output", out)
    assert result.exit_code == 0, result.output
    chart = json.loads(out.read_text())["subjects"][0]["chart"]
    assert chart["kind"] == "XmR" and "no counts behind them" in chart["why"]
    bad = invoke("audit", "--file", path, "--value", "percent", "--chart", "c")
    assert bad.exit_code == 2 and "'c' is not a chart" in bad.output
