"""The notebooks run from a clean kernel without error, and are stored without outputs."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there():
    assert [path.name for path in NOTEBOOKS] == ["01_models_as_neurons.ipynb", "02_gradient_descent_by_hand.ipynb",
                                                "03_classification.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {index} has outputs: clear them"


@pytest.mark.notebook
@pytest.mark.parametrize("path", [
    # Notebook 01 ends with a short Keras run (TensorFlow is a test dependency, so it runs in CI too).
    pytest.param(path, marks=[pytest.mark.tensorflow] if path.name.startswith("01_") else []) for path in NOTEBOOKS
], ids=lambda path: path.stem)
def test_notebook_executes(path):
    """Every cell runs; any exception (an assertion in a cell included) fails the test."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert not errors
