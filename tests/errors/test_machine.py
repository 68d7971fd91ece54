"""The machine: a workspace another command is using, folders that cannot be written, a full
disk, and output paths that are folders, name the wrong format or the same file twice."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.errors.catalogue import Case, invoke, nothing, refused

PATCH = pytest.MonkeyPatch()
HOLDERS: list[subprocess.Popen] = []
OUT = "{ws}/outputs"


def busy(ws: Path) -> None:
    """Another process holds a write connection on the warehouse."""
    code = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", code, str(ws / ".carecontracts" / "warehouse.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    HOLDERS.append(holder)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"


def failing(number: int, partly: bool = True):
    """A writer that writes part of its file, then fails with the OS error `number`."""
    def write(*args, **kwargs):
        target = next((a for a in args if isinstance(a, (str, Path))), None)
        if partly and target is not None:
            Path(target).write_text("half")
        raise OSError(number, os.strerror(number), str(target))
    return write


def full_disk_csv(ws: Path) -> None:
    import pyarrow.csv

    earlier(ws)
    PATCH.setattr(pyarrow.csv, "write_csv", failing(errno.ENOSPC))


def full_disk_xlsx(ws: Path) -> None:
    import carecontracts.report.export as export

    PATCH.setattr(export, "write_workbook", failing(errno.ENOSPC))


def read_only_folder(ws: Path) -> None:
    import carecontracts.machine as machine

    earlier(ws)
    PATCH.setattr(machine.tempfile, "mkstemp", failing(errno.EROFS, partly=False))


def earlier(ws: Path) -> None:
    """An earlier export, which a failed one must leave exactly as it was."""
    folder = ws / "outputs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lines.csv").write_text("an earlier export\n")


def read_only_records(ws: Path) -> None:
    """The records store opened read-only (as a copy on a read-only share would be)."""
    config = ws / "carecontracts.toml"
    store = ws / ".carecontracts" / "records.sqlite"
    config.write_text(f'records = "sqlite:///file:{store}?mode=ro&uri=true"\n' + config.read_text(encoding="utf-8"), encoding="utf-8")


def folder_at(name: str):
    def change(ws: Path) -> None:
        (ws / name).mkdir(parents=True)
    return change


CASES = [
    Case("pay while another process writes the warehouse", busy, ("pay", "year", "-w", "{ws}"), ("warehouse.duckdb", "busy", "wait")),
    Case("load while another process writes the warehouse", busy, ("load", "-w", "{ws}"), ("busy", "process")),
    Case("export while another process writes the warehouse", busy, ("export", f"{OUT}/x.csv", "-w", "{ws}"), ("busy",)),
    Case("export onto a full disk", full_disk_csv, ("export", f"{OUT}/lines.csv", "-w", "{ws}"), ("lines.csv", "disk", "full")),
    Case("export to a workbook on a full disk", full_disk_xlsx, ("export", f"{OUT}/lines.xlsx", "-w", "{ws}"), ("lines.xlsx", "disk", "full")),
    Case("export into a read-only folder", read_only_folder, ("export", f"{OUT}/lines.csv", "-w", "{ws}"), ("lines.csv", "read-only")),
    Case("close with a read-only records store", read_only_records, ("close", "2025-04", "-w", "{ws}"), ("records store", "read-only", "records")),
    Case("pay onto a full disk: priced and stored, the workbook not written", full_disk_xlsx, ("pay", "year", "-w", "{ws}", "--xlsx", "{ws}/s.xlsx"),
         ("s.xlsx", "disk is full", "stored in the warehouse", "was not written", "carecontracts export PATH"), unchanged=False),
    Case("pay --csv to a .txt file", nothing, ("pay", "year", "-w", "{ws}", "--csv", "{ws}/out.txt"), ("--csv", "out.txt", ".csv")),
    Case("pay --parquet to a .csv file", nothing, ("pay", "year", "-w", "{ws}", "--parquet", "{ws}/out.csv"), ("--parquet", ".parquet")),
    Case("pay --xlsx onto a folder", folder_at("book.xlsx"), ("pay", "year", "-w", "{ws}", "--xlsx", "{ws}/book.xlsx"), ("--xlsx", "is a folder")),
    Case("pay --csv and --xlsx on one path", nothing, ("pay", "year", "-w", "{ws}", "--xlsx", "{ws}/a.xlsx", "--parquet", "{ws}/a.xlsx"), ("--parquet",)),
    Case("pay --xlsx under a file", nothing, ("pay", "year", "-w", "{ws}", "--xlsx", "{ws}/carecontracts.toml/a.xlsx"), ("carecontracts.toml", "--xlsx", "folders")),
    Case("export onto a folder", folder_at("lines.csv"), ("export", "{ws}/lines.csv", "-w", "{ws}"), ("PATH", "lines.csv", "is a folder")),
    Case("export to an unknown format", nothing, ("export", "{ws}/lines.txt", "-w", "{ws}"), ("lines.txt", ".parquet", ".xlsx")),
    Case("report --html and --xlsx on one path", nothing, ("report", "--as-of", "2025-11", "-w", "{ws}", "--html", "{ws}/r.txt", "--xlsx", "{ws}/r.txt"),
         ("--html", ".html", "--xlsx", "overwrite")),
    Case("report --html to a folder", folder_at("r.html"), ("report", "--as-of", "2025-11", "-w", "{ws}", "--html", "{ws}/r.html"), ("--html", "is a folder")),
    Case("simulate --xlsx to a .html file", nothing, ("simulate", "--runs", "10", "-w", "{ws}", "--xlsx", "{ws}/risk.html"), ("--xlsx", "risk.html", ".xlsx")),
    Case("positions --xlsx to a .txt file", nothing, ("positions", "-w", "{ws}", "--xlsx", "{ws}/p.txt"), ("--xlsx",)),
    Case("audit --html onto a folder", folder_at("audit.html"), ("audit", "-w", "{ws}", "--html", "{ws}/audit.html"), ("--html", "is a folder")),
    Case("write-acm to a .xlsx file", nothing, ("monitoring", "write-acm", "{ws}/acm.xlsx", "--period", "2025-10", "-w", "{ws}"), ("acm.xlsx", ".csv")),
]


@pytest.fixture(autouse=True)
def undone():
    """Undo the case's patches and release its warehouse holders after it."""
    yield
    PATCH.undo()
    for holder in HOLDERS:
        holder.kill()
        holder.wait()
    HOLDERS.clear()


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_machine(example: Path, case: Case) -> None:
    refused(example, case)


def test_outputs_follow_the_umask(example: Path) -> None:
    """Colleagues on a shared drive can open what is written: the user's umask, not 0600."""
    old = os.umask(0o022)
    try:
        result = invoke(example, "export", "{ws}/lines.csv", "-w", "{ws}")
        assert result.exit_code == 0, result.output
        result = invoke(example, "export", "{ws}/lines.xlsx", "-w", "{ws}")
        assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    for name in ("lines.csv", "lines.xlsx"):
        assert (example / name).stat().st_mode & 0o777 == 0o644, name
    assert not [p for p in example.iterdir() if p.name.startswith(".lines")], "a temporary file was left behind"
