"""Faults of the machine, said plainly: a workspace another command is using, a folder that
cannot be written, a full disk, an output path that is a folder or names the wrong format.

Output files are written whole: to a temporary file beside the target, given the user's
umask (so colleagues on a shared drive can open them as they can any other file), then
renamed over the target, so a failure leaves the earlier file exactly as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from carecontracts.problems import Problem, ProblemsError

LOCK = re.compile(r'Could not set lock on file "(?P<file>[^"]+)".*?\(PID (?P<pid>\d+)\)', re.S)
WORDS = {
    errno.ENOSPC: ("the disk is full", "free space on the disk, or write elsewhere"),
    errno.EDQUOT: ("the disk quota is used up", "free space within the quota, or write elsewhere"),
    errno.EROFS: ("the file system is read-only", "a folder that can be written"),
    errno.EACCES: ("permission denied", "a folder and file you may write"),
    errno.EPERM: ("not permitted", "a folder and file you may write"),
    errno.EISDIR: ("is a folder", "a file name, not a folder"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "a path through folders"),
    errno.ENOENT: ("no such file or folder", "a path that exists"),
    errno.ENAMETOOLONG: ("the name is too long", "a shorter path"),
}


def umask() -> int:
    """The process's umask (read without changing it for good)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def shared_mode() -> int:
    """The mode a new file gets from the user's umask (0o644 under the usual 022)."""
    return 0o666 & ~umask()


def holder(pid: int) -> str | None:
    """The command line of the process `pid`, shortened to the carecontracts command it runs
    (`carecontracts pay year`), or None if it cannot be read."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    args = [w.decode(errors="replace") for w in words if w]
    for index, word in enumerate(args):
        if word.endswith("carecontracts") or word == "carecontracts.cli":
            shown = [a for a in args[index + 1:] if not a.startswith("-")][:3]
            return " ".join(["carecontracts", *shown])
    text = " ".join(" ".join(Path(a).name if i == 0 else a for i, a in enumerate(args[:3])).split())
    return (text[:57] + "...") if len(text) > 60 else text or None


def busy_problem(error: BaseException) -> Problem | None:
    """The warehouse is locked by another process: which one, if it can be told."""
    match = LOCK.search(str(error))
    if match is None:
        return None
    pid = int(match.group("pid"))
    command = holder(pid) if pid != os.getpid() else None
    by = f"`{command}` (process {pid})" if command else f"process {pid}"
    return Problem(match.group("file"), f"the workspace is busy: its warehouse is in use by {by}",
                   expected="wait for that command to finish, then run this one again (one `pay` or `load` at a time per workspace)")


def os_problem(error: OSError, path: Path | str | None = None) -> Problem:
    """An operating-system error as a problem naming the file and what was expected."""
    where = str(path or error.filename or "output")
    message, expected = WORDS.get(error.errno or 0, (error.strerror or str(error), "a path that can be written"))
    return Problem(where, f"cannot write: {message}", expected=expected)


def translated(error: BaseException) -> ProblemsError | None:
    """A fault of the machine as located problems, or None if it is not one."""
    if isinstance(error, ProblemsError):
        return error
    busy = busy_problem(error)
    if busy is not None:
        return ProblemsError([busy])
    if isinstance(error, OSError) and error.errno in WORDS:
        return ProblemsError([os_problem(error)])
    text = str(error)
    if type(error).__name__ in ("IOException", "PermissionException") and ("Permission denied" in text or "Read-only" in text):
        return ProblemsError([Problem(_quoted(text) or "warehouse", "cannot open the warehouse for writing: "
                                      + ("the file system is read-only" if "Read-only" in text else "permission denied"),
                                      expected="a workspace folder you may write (or a copy of it)")])
    if type(error).__module__.startswith("sqlalchemy") and type(error).__name__ == "OperationalError":
        fault = records_problem(text)
        return ProblemsError([fault]) if fault is not None else None
    return None


RECORDS_FAULTS = {
    "readonly database": ("cannot write the records store: it is read-only", "a records store you may write (the `records` setting, or .carecontracts/records.sqlite)"),
    "database is locked": ("the workspace is busy: its records store is in use by another command", "wait for that command to finish, then run this one again"),
    "unable to open database": ("cannot open the records store", "a records store that exists and you may open (the `records` setting)"),
    "disk i/o error": ("cannot write the records store: the disk failed or is full", "free space on the disk, or a records store elsewhere"),
    "database or disk is full": ("cannot write the records store: the disk is full", "free space on the disk, or a records store elsewhere"),
}


SERVER = re.compile(r"(?:connection failed|connection is bad|could not connect to server|connection to server)", re.I)
SERVER_CAUSE = re.compile(r'connection to server (?:on socket "(?P<socket>[^"]*)"|at "(?P<host>[^"]*)"(?:, port (?P<port>\d+))?) '
                          r'failed: (?:FATAL:\s+)?(?P<cause>[^\n]+)')


def records_problem(text: str) -> Problem | None:
    """A fault of the records store's database, said plainly, or None if it is not one."""
    lowered = text.lower()
    if SERVER.search(text):
        # The server named by the `records` setting could not be reached or refused us: say why
        # in the server's own words (a database or user that does not exist, a refused connection).
        cause = SERVER_CAUSE.search(text)
        if cause is None:
            reason = "the `records` URL: it did not answer"
        else:
            place = cause.group("socket") or ":".join(p for p in (cause.group("host"), cause.group("port")) if p)
            reason = f"{place}: {cause.group('cause').strip().rstrip('.')}"
        return Problem("records store", f"cannot connect to the records store's server at {reason}",
                       expected="the `records` setting naming a database server that is running and lets you in, "
                                "e.g. postgresql+psycopg://user@host/database")
    for words, (message, expected) in RECORDS_FAULTS.items():
        if words in lowered:
            return Problem("records store", message, expected=expected)
    return None


def is_overflow(error: BaseException) -> bool:
    """An amount that does not fit the engine's exact types, however the engine says it."""
    if isinstance(error, (ArithmeticError, OverflowError)):
        return True
    text = str(error).lower()
    return type(error).__name__ in ("OutOfRangeException", "ConversionException", "InvalidInputException", "ArrowInvalid") and (
        "out of range" in text or "overflow" in text or "cannot be represented" in text or "does not fit" in text)


def _quoted(text: str) -> str | None:
    match = re.search(r'"([^"]+)"', text)
    return match.group(1) if match else None


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write; on success it is given the user's umask and
    renamed over `path`, on any failure removed, so `path` is never half-written. An OS
    error (a full disk, a read-only folder) is a ProblemsError naming `path`."""
    path = Path(path)
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(handle)
        temporary = Path(name)
        yield temporary
        os.chmod(temporary, shared_mode())
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        raise ProblemsError([os_problem(error, path)]) from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.unlink()


def check_outputs(outputs: dict[str, tuple[Path | None, tuple[str, ...]]]) -> None:
    """Refuse, before any work, output paths that cannot be written as asked: a suffix not
    of the format (`{'--csv': (path, ('csv',))}`), a folder in a file's place, a file in a
    folder's place, or two outputs on the same path."""
    problems: list[Problem] = []
    seen: dict[Path, str] = {}
    for option, (path, formats) in outputs.items():
        if path is None:
            continue
        suffix = path.suffix.lower().lstrip(".")
        if formats and suffix not in formats:
            wanted = " or ".join(f".{f}" for f in formats)
            problems.append(Problem(str(path), f"a file ending '.{suffix}' cannot hold {'/'.join(formats).upper()}" if suffix
                                    else "the file name has no suffix", field=option, value=str(path), expected=f"a file ending {wanted}"))
        if path.is_dir():
            problems.append(Problem(str(path), "is a folder", field=option, value=str(path), expected="a file name (the folder can hold it: give DIR/NAME)"))
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    problems.append(Problem(str(path), f"{parent.name} is a file, not a folder", field=option, value=str(path), expected="a path through folders"))
                break
        key = Path(os.path.abspath(path))
        if key in seen:
            problems.append(Problem(str(path), f"is also the path of {seen[key]}: one would overwrite the other", field=option, value=str(path),
                                    expected="a different file for each output"))
        seen.setdefault(key, option)
    if problems:
        raise ProblemsError(problems)
