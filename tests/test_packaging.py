"""The package as a user installs it: a non-editable `pip install .` into a scratch venv carries the probe suites
and rehearsal prompts (package data) and runs without the checkout; every third-party import is declared; and
the layering contract holds."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib.metadata import packages_distributions
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



def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party module -> names imported from it anywhere in chatbot/ (function-level imports too)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "chatbot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                pairs = [(a.name, "") for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                pairs = [(node.module, a.name) for a in node.names]
            else:
                continue
            for module, name in pairs:
                top = module.split(".")[0]
                if top != "chatbot" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(name)
    return found


def _declared() -> dict[str, str]:
    """Normalised distribution name -> its requirement string, from pyproject.toml's dependencies and its extras
    other than the test tools (an extra's module is imported only where its feature is used)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for extra, ds in project.get("optional-dependencies", {}).items()
                                      if extra != "test" for d in ds]
    return {_norm(re.match(r"[A-Za-z0-9._-]+", d).group()): d for d in deps}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_declared():
    dists = packages_distributions()
    declared = _declared()
    missing = {m: dists.get(m) for m in _third_party_imports()
               if not any(_norm(d) in declared for d in dists.get(m, [m]))}
    assert missing == {}, f"imported but not in pyproject.toml's dependencies or extras: {missing}"


def test_private_imports_pin_an_upper_bound():
    """A private name (leading underscore) may change in any release: its distribution needs an upper bound (or an
    exact pin)."""
    dists = packages_distributions()
    declared = _declared()
    unbounded = [m for m, names in _third_party_imports().items() if any(n.startswith("_") for n in names)
                 for d in dists.get(m, [m]) if not any(op in declared.get(_norm(d), "<") for op in ("<", "=="))]
    assert unbounded == []
