"""The tutorial notebooks: committed with the outputs of a full run, and runnable top to bottom in
quick mode (NPGAN_TUTORIAL_STEPS=20), as a learner would run them.

The quick-mode runs take a few seconds to half a minute each on 2 cores, and CI runs them in both
of its passes: on the stand-in (NPGAN_BACKEND=cupy-standin) they check that each notebook copies
device arrays to the host before printing or plotting, as it must on a GPU.
"""
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("*.ipynb"))


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def error_outputs(nb):
    return [o for c in code_cells(nb) for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_notebook_is_committed_with_the_outputs_of_a_full_run(path):
    """Every code cell executed once, top to bottom in one kernel (counts 1..n), no error, and at
    least one picture: a reader sees the results without running anything."""
    nb = nbformat.read(path, as_version=4)
    cells = code_cells(nb)
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: execution counts {counts}; run it top to bottom in a fresh kernel and save it with its outputs")
    errors = error_outputs(nb)
    assert not errors, f"{path.name}: committed with an error: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    assert any("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", [])), (
        f"{path.name}: no image among its outputs")


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_notebook_runs_in_quick_mode(path, monkeypatch, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("NPGAN_TUTORIAL_STEPS", "20")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The kernel imports this checkout's npgan even where it is not pip-installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    assert not error_outputs(nb)
    # MPLBACKEND=Agg, as on servers and in CI: the notebook selects the inline backend itself,
    # so an executed notebook always carries its pictures.
    assert any("image/png" in o.get("data", {}) for c in code_cells(nb) for o in c.get("outputs", [])), (
        f"{path.name}: executed with MPLBACKEND=Agg it shows no picture; start it with %matplotlib inline")


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_notebook_cells_have_ids(path):
    """nbformat 4.5 gives every cell an id; a cell without one makes nbformat warn on every read."""
    import json
    cells = json.loads(path.read_text())["cells"]
    assert all("id" in cell for cell in cells), [i for i, cell in enumerate(cells) if "id" not in cell]
