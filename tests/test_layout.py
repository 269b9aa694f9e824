"""The package's shape: the read path stays light and the modules form no import cycle."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "textcnn"
FIXTURE = Path(__file__).parent / "fixtures" / "textcnn-0.1.0" / "sst2_tiny.ckpt"


def test_loading_and_predicting_imports_neither_lightning_nor_torchmetrics():
    script = (
        "import sys, textcnn\n"
        f"print(textcnn.load({str(FIXTURE)!r}).predict(['a fine film'])[0]['label'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pytorch_lightning', 'lightning', 'lightning_fabric', 'torchmetrics', 'datasets', 'onnxruntime', "
        "'huggingface_hub', 'safetensors', 'fastapi')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    label, heavy = result.stdout.strip().splitlines()
    assert label in ("negative", "positive")
    assert heavy == "[]"


HEAVY = ("pytorch_lightning", "lightning", "lightning_fabric", "torchmetrics", "datasets", "pandas", "pyarrow",
         "onnxruntime", "onnx", "fastapi", "uvicorn", "optuna", "sklearn", "benchmarks")


def _heavy_modules_after(script: str) -> tuple[str, list[str]]:
    """stdout of ``script`` and the heavy top-level packages it left imported."""
    script += f"\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    *output, heavy = result.stdout.strip().splitlines()
    return "\n".join(output), eval(heavy)


def test_the_cli_predicts_from_a_checkpoint_without_lightning_or_datasets(tmp_path):
    lines = tmp_path / "texts.txt"
    lines.write_text("a fine film\n", encoding="utf-8")
    output, heavy = _heavy_modules_after(
        "from textcnn.cli import main\n"
        f"main(['predict', '--checkpoint', {str(FIXTURE)!r}, 'a dull film'])\n"
        f"main(['predict', '--checkpoint', {str(FIXTURE)!r}, '--file', {str(lines)!r}])\n"
    )
    assert output.count('"label"') == 2
    assert heavy == []


def test_the_cli_usage_imports_nothing_heavy():
    output, heavy = _heavy_modules_after("from textcnn.cli import main\nmain(['--help'])\n"
                                         "import sys\nprint('torch' in sys.modules)")
    assert output.endswith("False") and heavy == []


def test_training_imports_no_export_service_search_or_benchmark_code():
    _, heavy = _heavy_modules_after("from textcnn.cli import main\nimport textcnn.training.run")
    assert set(heavy) <= {"pytorch_lightning", "lightning_fabric", "torchmetrics", "datasets", "pandas", "pyarrow"}


def test_a_model_directory_loads_without_lightning_the_hub_client_or_onnxruntime(tmp_path):
    from textcnn.inference.predictor import Predictor

    Predictor.from_checkpoint(FIXTURE).save(tmp_path / "model")
    script = (
        "import sys, textcnn\n"
        f"print(textcnn.load({str(tmp_path / 'model')!r}).predict(['a fine film'])[0]['label'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pytorch_lightning', 'lightning', 'torchmetrics', "
        "'datasets', 'onnxruntime', 'huggingface_hub', 'fastapi', 'safetensors'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    label, heavy = result.stdout.strip().splitlines()
    assert label in ("negative", "positive")
    assert heavy == "['safetensors']"  # what reads the weights, and nothing else


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The textcnn modules ``path`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in modules:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found.update(submodules or {node.module})
    return found


def test_no_module_imports_one_that_imports_it_back():
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: _imports(path, set(files)) - {name} for name, path in files.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", "import cycle: " + " → ".join(trail[trail.index(target):] + [target])
            if target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert graph["textcnn.inference.onnx"] and graph["textcnn.data.datamodule"]  # the walk saw real edges


def test_the_readme_is_a_quickstart_that_opens_with_the_two_commands():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in first_block.strip().splitlines()] == [["make", "train"], ["make", "test"]]
    for target in re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", readme):  # every link into the docs resolves
        assert (PACKAGE.parent / target).is_file(), target


def test_modules_and_functions_stay_short_enough_to_read():
    """A 400-line module or a 60-line function is a sign that several concerns live together."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > 400:
            too_long.append(f"{path.name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                too_long.append(f"{path.name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long


def test_no_private_lightning_or_uvicorn_name_is_used():
    """Public APIs only: nothing reads a ``_``-prefixed attribute of Lightning's objects or imports a
    private module of Lightning or uvicorn, so neither needs an upper version bound."""
    private = re.compile(r"\b(?:trainer|pl_module|strategy|checkpoint_callback)\._[a-z]|"
                         r"(?:pytorch_lightning|lightning_fabric|uvicorn)(?:\.\w+)*\._\w+|"
                         r"from (?:pytorch_lightning|uvicorn)\S* import _")
    found = [f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if private.search(line)]
    assert not found, found
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'"pytorch-lightning>=[\d.]+"', pyproject) and re.search(r'"uvicorn>=[\d.]+"', pyproject)
