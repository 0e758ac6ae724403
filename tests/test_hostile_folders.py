"""Run and sweep folders laid out to make `dl` write elsewhere: symbolic links, FIFOs and
names with control characters are refused, and no file outside the folder changes.

docs/reliability.md, point 15.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dl_cli.storage import RunError, write_text


pytestmark = pytest.mark.reliability


def refused(result, *names) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    message = " ".join(result.output.split())
    assert "Traceback" not in message
    for name in names:
        assert str(name) in message, message
    return message


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file of the user's that a planted link points at."""
    path = tmp_path / "victim.txt"
    path.write_text("the user's own file\n")
    return path


@pytest.mark.parametrize("name", ["train.log", "metrics.jsonl", "summary.json", "checkpoints",
                                  "checkpoints/last.npz", "config.yaml"])
def test_a_link_planted_in_a_run_folder_is_refused_and_its_target_unchanged(
        interrupted_run, victim, tmp_path, name, dl):
    planted = interrupted_run / name
    if name == "checkpoints":
        target = tmp_path / "elsewhere"
        shutil.copytree(planted, target)
        before = {p.name: p.read_bytes() for p in target.iterdir()}
        shutil.rmtree(planted)
    else:
        target, before = victim, victim.read_bytes()
        planted.unlink(missing_ok=True)
    planted.symlink_to(target)
    refused(dl("train", "--resume", interrupted_run, "-q"), planted, "symbolic link")
    after = ({p.name: p.read_bytes() for p in target.iterdir()} if target.is_dir()
             else target.read_bytes())
    assert after == before


def test_a_link_at_an_atomic_writes_temp_name_is_not_followed(tmp_path, victim):
    path = tmp_path / "summary.json"
    (tmp_path / f".summary.json.{os.getpid()}.tmp").symlink_to(victim)
    with pytest.raises(RunError, match="symbolic link"):
        write_text(path, "{}\n")
    assert victim.read_text() == "the user's own file\n" and not path.exists()


def test_a_fifo_in_a_run_folder_is_refused_without_blocking(interrupted_run):
    log = interrupted_run / "train.log"
    log.unlink()
    os.mkfifo(log)  # opening it to append would wait for a reader forever
    proc = subprocess.run([sys.executable, "-m", "dl_cli", "train", "--resume",
                           str(interrupted_run), "-q"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{log}: is not a regular file" in " ".join(proc.stderr.split())


@pytest.mark.parametrize("name", ["ledger.jsonl", "results.csv", "trial-0001"])
def test_a_link_planted_in_a_sweep_folder_is_refused_and_its_target_unchanged(
        reference, tmp_path, victim, name, dl):
    folder = Path(shutil.copytree(reference, tmp_path / "sweep"))
    planted = folder / name
    if planted.is_dir():
        target = Path(shutil.copytree(planted, tmp_path / "elsewhere"))
        shutil.rmtree(planted)
    else:
        target = victim
        planted.unlink()
    before = target.read_bytes() if target.is_file() else sorted(target.rglob("*"))
    planted.symlink_to(target)
    refused(dl("sweep", "--resume", folder), planted, "symbolic link")
    assert (target.read_bytes() if target.is_file() else sorted(target.rglob("*"))) == before


@pytest.mark.parametrize("name", ["run\nwarning: forged line", "run\x1b[2J", "run\u202egnp.exe",
                                  "run\x00"])
def test_run_names_with_control_characters_are_refused(tmp_path, name, dl, tiny, write_config):
    config = write_config(tmp_path, {**tiny, "name": name})
    message = refused(dl("train", config, "-q"), "name: must be a non-empty name without")
    assert "control characters" in message and not (tmp_path / "runs").exists()


def test_a_forged_run_config_cannot_write_a_line_into_the_log(interrupted_run, dl):
    path = interrupted_run / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**raw, "name": "tiny\nerror: forged"}))
    log = (interrupted_run / "train.log").read_bytes()
    refused(dl("train", "--resume", interrupted_run, "-q"), "control characters")
    assert (interrupted_run / "train.log").read_bytes() == log
