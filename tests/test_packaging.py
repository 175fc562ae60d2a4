"""The package as a user installs it: a non-editable `pip install .` into a scratch venv carries the probe suites
and rehearsal prompts (package data) and runs without the checkout; and the layering contract holds."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A scratch venv with the package installed from a wheel built off a clean copy of the checkout (no stale
    build/ folder can leak into it); the heavy dependencies come from the test venv through a .pth file, and the
    wheel is built with the test venv's setuptools (nothing is downloaded)."""
    scratch = tmp_path_factory.mktemp("scratch")
    source = scratch / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                                 "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(scratch / "wheels"), str(source)],
                   check=True, timeout=600)
    wheel = next((scratch / "wheels").glob("chatbot-*.whl"))
    venv = scratch / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=600)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def run(venv, *args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / "chatbot"), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_installed_package_ships_its_data_and_runs_without_the_checkout(installed, tmp_path):
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import chatbot, pathlib; print(pathlib.Path(chatbot.__file__).resolve())"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.strip()
    assert str(installed) in where and str(ROOT) not in where  # the installed copy, not the checkout
    proc = run(installed, "probe", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "regression probes" in proc.stdout
    home = tmp_path / "home"
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"messages": [{"role": "user", "content": "My dog is called Rex."},
                                            {"role": "assistant", "content": "Nice!"}]}) + "\n")
    assert run(installed, "--home", str(home), "import", str(src), cwd=tmp_path).returncode == 0
    proc = run(installed, "--home", str(home), "consolidate", "--dry-run", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["status"] == "dry-run" and result["counts"]["rehearsal"] > 0  # prompts read from the package


def test_layers_only_point_down():
    """import-linter's contract in pyproject.toml: app/cli → evaluation → learning → serving → privacy → memory →
    core, function-level imports included."""
    proc = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr

