"""The packages' import arrows run one way, and importing a package changes nothing about the process.

    common <- model <- train          common <- tokenizer <- pipeline          train -> tokenizer

Every `import` statement counts, top-level or inside a function: a lazy import is still an arrow.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "model", "tokenizer", "train", "pipeline")
# What each package may import besides itself.
ALLOWED = {
    "common": set(),
    "model": {"common"},
    "tokenizer": {"common"},
    "train": {"common", "model", "tokenizer"},
    "pipeline": {"common", "tokenizer"},
}
# Packages that run where Beam is not installed (the trainer's machines).
BEAM_FREE = ("model", "train")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            # `from common import config_io` names the module common.config_io
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: relative import; the project imports by full name only")
    return modules


def package_imports(package: str) -> dict[str, set[str]]:
    """{file: the top-level names it imports} for every .py file of `package`."""
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no package {package}"
    return {str(path.relative_to(REPO)): {module.split(".")[0] for module in imported_modules(path)}
            for path in files}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_arrows(package):
    forbidden = set(PACKAGES) - ALLOWED[package] - {package}
    wrong = {file: sorted(names & forbidden) for file, names in package_imports(package).items() if names & forbidden}
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package]) or 'the standard library and third parties'}"


@pytest.mark.parametrize("package", BEAM_FREE)
def test_trainer_side_never_imports_beam(package):
    assert not {file for file, names in package_imports(package).items() if "apache_beam" in names}


def test_the_trainer_runs_without_beam_or_the_pipeline():
    """What the files say, checked at run time too: importing every module of model/ and train/ (and the
    tokenizer they read) loads neither Beam nor any part of pipeline/."""
    probe = ("import importlib, pkgutil, sys\n"
             "import model, train\n"
             "for package in (model, train):\n"
             "    for found in pkgutil.iter_modules(package.__path__):\n"
             "        importlib.import_module(f'{package.__name__}.{found.name}')\n"
             "import tokenizer\n"
             "print(sorted(name for name in sys.modules if name.split('.')[0] in ('apache_beam', 'pipeline')))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_common_init_imports_nothing():
    tree = ast.parse((REPO / "common" / "__init__.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_the_graph_checker_sees_a_wrong_arrow(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text("def f():\n    from pipeline.config import CleanConfig\n")
    assert "pipeline.config" in imported_modules(stray)


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_adds_no_logging_filters_or_handlers(package):
    probe = ("import logging, sys\n"
             "root = logging.getLogger()\n"
             "before = (list(root.filters), list(root.handlers), root.level)\n"
             f"import {package}\n"
             "assert (list(root.filters), list(root.handlers), root.level) == before, (root.filters, root.handlers)\n")
    subprocess.run([sys.executable, "-c", probe], cwd=REPO, check=True, capture_output=True, text=True)


@pytest.mark.parametrize("package, argv", [
    ("pipeline", ["tokenize", "--input", "no-such-dir", "--tokenizer", "no-such-tok", "--output", "out"]),
    ("tokenizer", ["train", "--input", "no-such-dir", "--output", "out", "--vocab-size", "300"]),
])
def test_commands_still_hide_beams_apitools_warning(package, argv):
    """Without Beam's GCP extra, importing Beam logs "apitools not found ..." on the root logger; a command's
    stderr must stay its one error line."""
    probe = ("import sys\n"
             "sys.modules['apitools'] = None  # as on a machine without apache-beam[gcp]\n"
             f"from {package}.__main__ import main\n"
             f"sys.exit(main({argv!r}))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert "apitools" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_every_pipeline_config_dataclass_lives_in_pipeline_config():
    """One obvious place for a stage's settings: a `...Config` class anywhere else under pipeline/ is a second one."""
    elsewhere = {str(path.relative_to(REPO)): node.name
                 for path in (REPO / "pipeline").rglob("*.py") if path.name != "config.py" or path.parent.name != "pipeline"
                 for node in ast.parse(path.read_text()).body
                 if isinstance(node, ast.ClassDef) and node.name.endswith("Config")}
    assert not elsewhere
