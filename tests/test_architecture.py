"""The package's levels: each module imports only from its own level or below, and the
command-line applications never import each other (README: What is inside).

    1 foundation     backend, errors, data (inpainting's image sets too), checkpoint io, viz and
                     inpainting's pictures
    2 ops            functional pairs, im2col, CuPy kernels, CUDA graphs, the naive reference;
                     inpainting's masks, Poisson blending and classical fills
    3 building blocks layers, losses, optimizers, init, gradcheck
    4 models         the networks (the inpainting networks too) and the registry that builds them
    5 GAN recipe     objectives, step, loop, runs, sampling; metrics, health; the CycleGAN's and
                     the inpainting methods' training, latent search, runs, evaluation and fills
    6 applications   python -m npgan.train / sample / evaluate / translate / inpaint: command lines
                     only (and their shared CLI helpers)
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "npgan"

LEVELS = {
    1: ["npgan.backend", "npgan.comm", "npgan.errors", "npgan.testing", "npgan.data", "npgan.checkpoint", "npgan.viz",
        "npgan.inpainting_viz"],
    2: ["npgan.functional", "npgan.im2col", "npgan.kernels", "npgan.graph", "npgan.reference", "npgan.inpainting_ops"],
    3: ["npgan.layers", "npgan.losses", "npgan.optim", "npgan.init", "npgan.gradcheck"],
    4: ["npgan.models"],
    5: ["npgan.gan", "npgan.metrics", "npgan.health"],
    6: ["npgan.train", "npgan.sample", "npgan.evaluate", "npgan.cli", "npgan.inpaint", "npgan.translate"],
}
APPLICATIONS = {"npgan.train", "npgan.sample", "npgan.evaluate", "npgan.inpaint.cli", "npgan.translate"}


def level_of(module):
    """The level of the longest listed prefix of ``module`` (``npgan.gan.step`` -> npgan.gan's)."""
    best = None
    for level, prefixes in LEVELS.items():
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > len(best[1]):
                    best = (level, prefix)
    return best[0] if best else None


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imports(module, path):
    """The npgan modules ``path`` imports (relative imports resolved; ``from x import y`` counts
    as importing x.y when y is a module)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("npgan")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if not base.startswith("npgan"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = any(m == candidate for m, _ in modules())
                found.add(candidate if is_module else base)
    return found


ALL = list(modules())


def test_every_module_has_a_level():
    missing = [m for m, _ in ALL if m != "npgan" and level_of(m) is None]
    assert not missing, f"give these modules a level in LEVELS (and README's table): {missing}"


@pytest.mark.parametrize("module,path", [(m, p) for m, p in ALL if m != "npgan"], ids=lambda v: str(v))
def test_imports_go_down_the_levels(module, path):
    mine = level_of(module)
    wrong = []
    for target in sorted(imports(module, path)):
        theirs = level_of(target)
        if theirs is not None and theirs > mine:
            wrong.append(f"{target} (level {theirs})")
        if module in APPLICATIONS and target in APPLICATIONS and target != module:
            wrong.append(f"{target} (another application)")
    assert not wrong, f"{module} (level {mine}) imports {', '.join(wrong)}"


def test_the_inpainting_application_holds_only_its_command_line():
    """Like npgan.train and npgan.translate: its data, pictures, ops, networks and methods have their levels."""
    folder = PACKAGE / "inpaint"
    assert sorted(p.name for p in folder.glob("*.py")) == ["__init__.py", "__main__.py", "cli.py"]
    body = ast.parse((folder / "__init__.py").read_text()).body
    assert len(body) <= 1 and all(isinstance(node, ast.Expr) for node in body), "its __init__: a docstring only"


def test_the_checker_sees_a_violation(tmp_path):
    """A layer importing the training command, and the inpainting CLI importing it, are caught."""
    layer = tmp_path / "conv.py"
    layer.write_text("from ..train import EXIT_NONFINITE\nfrom .. import functional as F\n")
    assert imports("npgan.layers.conv", layer) == {"npgan.train", "npgan.functional"}
    app = tmp_path / "cli.py"
    app.write_text("from ..train import NonFiniteError\n")
    assert imports("npgan.inpaint.cli", app) == {"npgan.train"}
    assert level_of("npgan.layers.conv") == 3 and level_of("npgan.train") == 6 and level_of("npgan.gan.step") == 5
