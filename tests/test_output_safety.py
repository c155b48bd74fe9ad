"""Output folders: a user's files are never deleted or overwritten; outputs appear whole; one writer a target.

Each refusal asserts the message, the exit code 2, and that every file that
was there before is still there, byte for byte.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from failpattern import output
from failpattern._resources import synthetic_path
from failpattern.cli import main
from failpattern.output import (
    MANIFEST_NAME,
    OutputBusyError,
    OutputExistsError,
    OutputRefusedError,
    OutputWriteError,
    check_target,
    output_folder,
    owned_folder,
    read_manifest,
    remove_written,
)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _cli(*args, cwd: Path | None = None):
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args])
    finally:
        os.chdir(old)


@pytest.fixture()
def workdir(tmp_path):
    """A researcher's working folder: their cohort and an unrelated note."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(synthetic_path("ni2019_exact.csv"), folder / "cohort.csv")
    (folder / "notes.txt").write_text("my notes\n")
    return folder


# ----------------------------------------------------------------------------- library rules


def test_output_folder_writes_a_manifest_listing_every_file(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("b")
    manifest = read_manifest(target)
    assert manifest.kind == "report" and manifest.files == ("a.txt", "sub/b.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no work folder left


def test_force_replaces_only_a_folder_failpattern_wrote(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as tmp:
        (tmp / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError, match="--force"), output_folder(target):
        pass
    with output_folder(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _snapshot(target).keys() == {"new.txt", MANIFEST_NAME}


def test_force_refuses_a_folder_without_manifest(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "data.csv").write_text("x")
    with pytest.raises(OutputRefusedError, match="not written by failpattern"):
        check_target(target, force=True)
    assert (target / "data.csv").read_text() == "x"


def test_force_refuses_a_failpattern_folder_holding_a_users_file(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as tmp:
        (tmp / "report.md").write_text("r")
    (target / "my-notes.txt").write_text("keep me")
    with pytest.raises(OutputRefusedError, match="my-notes.txt"):
        check_target(target, force=True)
    assert (target / "my-notes.txt").read_text() == "keep me"


def test_force_refuses_another_kind(tmp_path):
    target = tmp_path / "out"
    with output_folder(target, kind="study-summary") as tmp:
        (tmp / "summary.csv").write_text("s")
    with pytest.raises(OutputRefusedError, match="study-summary, not a report"):
        check_target(target, force=True, kind="report")


def test_empty_existing_folder_is_taken(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    with output_folder(target) as tmp:
        (tmp / "a.txt").write_text("a")
    assert (target / "a.txt").read_text() == "a"


def test_manifest_cannot_reach_outside_its_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (target / MANIFEST_NAME).write_text(json.dumps({"schema": "failpattern-output/1", "kind": "report",
                                                    "files": ["../victim.txt", "/etc/passwd", "ok.txt"]}))
    (target / "ok.txt").write_text("ok")
    assert read_manifest(target).files == ("ok.txt",)
    assert remove_written(target) == [] and not target.exists()
    assert victim.read_text() == "precious"


def test_special_folders_are_refused(tmp_path, monkeypatch):
    (tmp_path / "x").write_text("x")
    monkeypatch.chdir(tmp_path)
    for path, what in [(".", "current folder"), (tmp_path, "current folder"), (tmp_path.parent, "holding the current"),
                       ("/", "filesystem root"), (Path.home(), "home folder")]:
        if what == "home folder" and Path.cwd().resolve().is_relative_to(Path.home().resolve()):
            what = "holding the current"
        with pytest.raises(OutputRefusedError, match=what):
            check_target(path, force=True)


def test_input_inside_the_target_is_refused(workdir):
    with pytest.raises(OutputRefusedError, match="holds the input file"):
        check_target(workdir, force=True, inputs=[workdir / "cohort.csv"])


def test_a_second_writer_is_refused_and_a_dead_ones_work_folder_is_cleaned(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as tmp:
        (tmp / "a").write_text("a")
        with pytest.raises(OutputBusyError, match="another failpattern run"), output_folder(target):
            pass
    # a killed run: its work folder with a dead owner and a half-written new folder
    work = tmp_path / ".out2.failpattern-work"
    (work / "new").mkdir(parents=True)
    (work / "new" / "half.txt").write_text("half")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (work / "owner.json").write_text(json.dumps({"writer": "failpattern", "pid": int(dead.stdout), "started": "1",
                                                 "host": output.socket.gethostname()}))
    with output_folder(tmp_path / "out2") as tmp:
        (tmp / "b").write_text("b")
    assert not work.exists() and (tmp_path / "out2" / "b").read_text() == "b"


def test_a_folder_named_like_a_work_folder_but_not_ours_is_never_cleaned(tmp_path):
    work = tmp_path / ".out.failpattern-work"
    (work / "new").mkdir(parents=True)
    (work / "new" / "theirs.txt").write_text("a user's file")
    old = time.time() - 3600
    os.utime(work, (old, old))  # long past the grace period of a run that is just starting
    with pytest.raises(OutputRefusedError, match="was not left by a failpattern run"), output_folder(tmp_path / "out"):
        pass
    assert (work / "new" / "theirs.txt").read_text() == "a user's file"


def test_a_run_killed_between_the_renames_gets_its_old_folder_back(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as tmp:
        (tmp / "a").write_text("old report")
    work = tmp_path / ".out.failpattern-work"
    work.mkdir()
    os.replace(target, work / "old")  # the first rename of a replace, then the kill
    (work / "owner.json").write_text(json.dumps({"writer": "failpattern", "pid": 2**22 + 12345, "host": output.socket.gethostname()}))
    with pytest.raises(OutputExistsError):  # the next run restores the old report, then refuses without --force
        with output_folder(target) as tmp:
            (tmp / "b").write_text("b")
    assert (target / "a").read_text() == "old report" and not work.exists()


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_full_or_read_only_disk_is_one_message_and_leaves_the_target(tmp_path, monkeypatch, err):
    target = tmp_path / "out"
    with output_folder(target) as tmp:
        (tmp / "a").write_text("first")

    def refuse(*a, **k):
        raise OSError(err, os.strerror(err), str(tmp_path / ".out.failpattern-work" / "new" / "b"))

    with pytest.raises(OutputWriteError) as info, output_folder(target, force=True) as tmp:
        monkeypatch.setattr(Path, "write_text", refuse)
        (tmp / "b").write_text("second")
    monkeypatch.undo()
    assert "could not write" in str(info.value) and os.strerror(err) in str(info.value)
    assert _snapshot(target).keys() == {"a", MANIFEST_NAME} and (target / "a").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_owned_folder_refuses_a_users_folder_and_resumes_its_own(tmp_path):
    users = tmp_path / "users"
    users.mkdir()
    (users / "summary.csv").write_text("theirs")
    with pytest.raises(OutputRefusedError, match="not a study folder"), owned_folder(users, kind="study"):
        pass
    assert (users / "summary.csv").read_text() == "theirs"
    mine = tmp_path / "mine"
    with owned_folder(mine, kind="study", entries=["replicates/"]) as f:
        (f / "replicates").mkdir()
        (f / "replicates" / "c1").write_text("1")
    (mine / "readme.txt").write_text("user note")  # a user's note beside the study
    with owned_folder(mine, kind="study", entries=["replicates/"]) as f:  # resume keeps everything
        assert (f / "replicates" / "c1").exists()
    with owned_folder(mine, kind="study", entries=["replicates/"], force=True):  # force: ours go, theirs stay
        assert not (mine / "replicates").exists() and (mine / "readme.txt").read_text() == "user note"


# ----------------------------------------------------------------------------- the commands


@pytest.mark.parametrize("args", [
    ("reproduce", "--out", ".", "--force"),
    ("reproduce", "--out", "", "--force"),
    ("analyze", "cohort.csv", "--out", "", "--force"),
    ("analyze", "cohort.csv", "--out", ".", "--force"),
    ("analyze", "cohort.csv", "--out", "..", "--force"),
    ("reproduce", "--cohort", "cohort.csv", "--out", ".", "--force"),
    ("study", "--replicates", "2", "--workers", "1", "--out", ".", "--force"),
    ("study", "--replicates", "2", "--workers", "1", "--out", ""),
])
def test_commands_never_delete_the_working_folder(workdir, args):
    before = _snapshot(workdir.parent)
    r = _cli(*args, cwd=workdir)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.output.count("\n") <= 5, r.output
    assert any(s in r.output for s in ("current folder", "is empty", "holds the input", "not a study folder")), r.output
    assert _snapshot(workdir.parent) == before


def test_analyze_into_the_inputs_folder_is_refused(workdir, tmp_path):
    before = _snapshot(workdir)
    r = _cli("analyze", workdir / "cohort.csv", "--out", workdir, "--force")
    assert r.exit_code == 2 and "holds the input file" in r.output and "Traceback" not in r.output
    assert _snapshot(workdir) == before


def test_force_on_a_users_folder_is_refused(workdir, tmp_path):
    before = _snapshot(workdir)
    r = _cli("reproduce", "--out", workdir, "--force")
    assert r.exit_code == 2 and "not written by failpattern" in r.output
    assert _snapshot(workdir) == before


def test_study_never_overwrites_a_users_summary(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "summary.csv").write_text("my own summary")
    (folder / "summary.md").write_text("my own notes")
    for extra in ((), ("--force",)):
        r = _cli("study", "--replicates", "2", "--workers", "1", "--quiet", "--out", folder, *extra)
        assert r.exit_code == 2 and "not a study folder failpattern made" in r.output, r.output
    assert _snapshot(folder) == {"summary.csv": b"my own summary", "summary.md": b"my own notes"}


def test_report_folder_carries_a_manifest_and_force_replaces_it(tmp_path):
    from failpattern import load_cohort, run_plan
    from failpattern.report import write_report
    from failpattern.study.card import load_study

    card = load_study("ni2019")
    plan = run_plan(load_cohort(synthetic_path("ni2019_exact.csv")), card=card)
    out = tmp_path / "r"
    write_report(plan, None, out, card=card, jobs=1, formats=("png",))
    manifest = read_manifest(out)
    assert manifest.kind == "report"
    assert {"report.html", "report.md", "results.json", "figures/fig1a.png"} <= set(manifest.files)
    assert set(manifest.files) == {p.relative_to(out).as_posix() for p in out.rglob("*")
                                   if p.is_file() and p.name != MANIFEST_NAME}
    first = (out / "results.json").read_bytes()
    write_report(plan, None, out, card=card, jobs=1, formats=("png",), force=True)
    assert read_manifest(out).kind == "report" and (out / "results.json").read_bytes() != b""
    assert first  # replaced in place, same file set
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_two_runs_racing_for_one_out_one_wins(tmp_path):
    """Two ``reproduce`` processes into one new ``--out``: one writes it, the other gets a message (exit 2)."""
    out = tmp_path / "race"
    cmd = [sys.executable, "-m", "failpattern", "reproduce", "--out", str(out)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "Traceback" not in loser and ("another failpattern run" in loser or "already exists" in loser
                                         or "created by someone else" in loser), loser
    assert read_manifest(out).kind == "report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race"]


def test_internal_error_is_a_message_and_exit_3(monkeypatch, tmp_path):
    import failpattern.study.plan as plan_module

    def broken(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(plan_module, "run_plan", broken)
    r = _cli("check")
    assert r.exit_code == 3, r.output
    assert "internal error: ZeroDivisionError: a bug" in r.output and "Traceback" not in r.output


def test_disk_full_while_writing_the_report_is_exit_2(monkeypatch, tmp_path):
    import failpattern.report.write as write_module

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(write_module, "write_text", full)
    out = tmp_path / "o"
    r = _cli("reproduce", "--out", out)
    assert r.exit_code == 2, r.output
    assert "No space left on device" in r.output and "report.md" in r.output and "Traceback" not in r.output
    assert list(tmp_path.iterdir()) == []


def _private_mounts() -> bool:
    """Whether this machine lets a test mount a small file system in a private namespace (``unshare``)."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=20)
    return probe.returncode == 0


@pytest.mark.skipif(not _private_mounts(), reason="needs unshare and a private tmpfs mount (Linux)")
@pytest.mark.parametrize("disk", ["full", "read-only"])
def test_a_real_full_or_read_only_disk(tmp_path, disk):
    """``reproduce`` on a real 300 kB file system (full) and a read-only one: one line, exit 2, nothing left."""
    folder = tmp_path / "disk"
    folder.mkdir()
    ro = "mount -o remount,ro \"$D\" && " if disk == "read-only" else ""
    script = (f'D="{folder}"; mount -t tmpfs -o size=300k tmpfs "$D" && {ro}cd "$D" && '
              f'"{sys.executable}" -m failpattern reproduce --out out >/dev/null 2>"$D/../err" ; '
              'echo "rc=$?"; ls -A "$D"')
    r = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "MPLBACKEND": "Agg"})
    lines = r.stdout.split()
    err = (tmp_path / "err").read_text()
    assert lines[0] == "rc=2", (r.stdout, r.stderr, err)
    assert lines[1:] == []  # the file system holds nothing: no partial report, no work folder
    assert "Traceback" not in err and err.count("\n") == 1, err
    reason = "No space left on device" if disk == "full" else "Read-only file system"
    assert err.startswith("error: could not write ") and reason in err and str(folder) in err, err


def test_the_work_folder_of_a_killed_run_is_removed_by_the_next_run(tmp_path):
    """``kill -9`` of ``reproduce`` while it writes: the next run into the same ``--out`` cleans up and succeeds."""
    import signal

    out = tmp_path / "out"
    work = tmp_path / ".out.failpattern-work"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([sys.executable, "-m", "failpattern", "reproduce", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (work / "new").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert work.exists() and not out.exists()  # what a killed run leaves
    again = subprocess.run([sys.executable, "-m", "failpattern", "reproduce", "--out", str(out)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and read_manifest(out).kind == "report"
