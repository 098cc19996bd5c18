"""What Beam workers install: the pipeline's core dependencies and its bundled model, not the trainer's stack."""
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAINER_ONLY = {"torch", "tensorboard", "matplotlib", "safetensors"}


def requirement_name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()


def test_core_dependencies_leave_the_trainer_stack_to_an_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {requirement_name(r) for r in project["dependencies"]}
    assert not core & TRAINER_ONLY
    assert {"lxml_html_clean", "trafilatura", "sentencepiece", "fasttext-numpy2", "apache-beam"} <= core
    assert TRAINER_ONLY <= {requirement_name(r) for r in project["optional-dependencies"]["train"]}


def test_datasketch_is_for_tests_and_benchmarks_only():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "datasketch" not in {requirement_name(r) for r in project["dependencies"]}
    assert "datasketch" in {requirement_name(r) for r in project["optional-dependencies"]["dev"]}


def test_the_sdist_dataflow_stages_carries_the_language_model(tmp_path):
    """Dataflow's --setup_file runs `setup.py sdist` on the launcher and installs that on workers."""
    tree = tmp_path / "tree"
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "data", "bench", "out",
                                                              "runs", "__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path / "dist")], cwd=tree,
                   check=True, capture_output=True)
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    names = tarfile.open(sdist).getnames()
    assert any(name.endswith("pipeline/resources/lid.176.ftz") for name in names)
    assert any(name.endswith("pipeline/stages/read.py") for name in names)
    assert any(name.endswith("common/fileio.py") for name in names)  # what every worker-side module imports
