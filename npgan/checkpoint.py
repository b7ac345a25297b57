"""Checkpoints: everything a training run needs to continue bit for bit, in one ``.npz``.

A checkpoint holds

- ``G.<name>`` / ``D.<name>``: both models' ``state_dict()`` (parameters and BatchNorm buffers);
- ``opt_G.*`` / ``opt_D.*``: both optimizers' ``state_dict()`` (Adam's moments and step count);
- ``meta``: one JSON string with the step, the run configuration, the backend's RNG state
  and the structure of the optimizer states (their arrays are stored beside it).

It is written atomically: into a temporary file in the same folder, flushed and fsync'ed,
then moved over the old file with ``os.replace``. A crash or Ctrl-C while writing leaves the
previous checkpoint as it was. Arrays are refused if any is NaN or Inf, so a diverged run
never overwrites its last good checkpoint.

    >>> save_checkpoint("runs/x/checkpoint.npz", G=G, D=D, opt_G=opt_G, opt_D=opt_D,
    ...                 step=500, config=config, rng_state=backend.get_rng_state())
    >>> ckpt = load_checkpoint("runs/x/checkpoint.npz")
    >>> G.load_state_dict(ckpt["G"]); opt_G.load_state_dict(ckpt["opt_G"]); ckpt["step"]

``save_state`` / ``load_state`` write and read the same format for any named models and
optimizers (``save_checkpoint`` is ``save_state`` with G, D, opt_G and opt_D), plus an
``extra`` structure (the image pools of a CycleGAN run, ``npgan.gan.cycle``).
"""
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import backend

FORMAT_VERSION = 1


class NonFiniteStateError(ValueError):
    """Refused to save: an array holds NaN or Inf."""


# ---- nested structures <-> flat arrays + JSON ------------------------------------------
def _pack(obj, prefix, arrays):
    """A JSON-able copy of ``obj`` with every array moved into ``arrays`` under a dotted key.

    Arrays (NumPy or CuPy) become ``{"__array__": key}``; tuples become lists; NumPy scalars
    become Python numbers.
    """
    if isinstance(obj, dict):
        return {str(k): _pack(v, f"{prefix}.{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_pack(v, f"{prefix}.{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):                       # NumPy or CuPy array
        arrays[prefix] = backend.asnumpy(obj)
        return {"__array__": prefix}
    return obj


def _unpack(obj, arrays):
    """Inverse of ``_pack``: put the arrays back into the structure."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _unpack(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v, arrays) for v in obj]
    return obj


def _first_nonfinite(arrays):
    """The first key whose array is a float array with a NaN or Inf, else None."""
    for key, value in arrays.items():
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            return key
    return None


# ---- atomic writing -------------------------------------------------------------------
def atomic_savez(path, arrays):
    """``np.savez(path, **arrays)``, atomically: temp file in the same folder, fsync, rename.

    On any error the temporary file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)                                                # mkstemp makes it 0600
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:                                                   # also KeyboardInterrupt
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- checkpoints ----------------------------------------------------------------------
def save_state(path, *, models, optimizers, step, config, rng_state, extra=None):
    """Write any training run's state atomically: named models and optimizers (a CycleGAN has
    four networks and three optimizers), the step, the config, the RNG state and ``extra``.

    Args:
        models: {prefix: model or None}; each model's ``state_dict()`` is saved under ``prefix.``.
        optimizers: {name: optimizer}; each ``state_dict()`` goes into ``meta[name]`` (its arrays
            beside it, under ``name.``). Names must differ from the other meta keys.
        extra: a JSON-able structure that may hold arrays (an image pool), saved as ``meta["extra"]``.
        step, config, rng_state: as :func:`save_checkpoint`.

    Raises:
        NonFiniteStateError: some array holds NaN or Inf; nothing is written.
    """
    arrays = {}
    for prefix, model in models.items():
        for name, value in (model.state_dict().items() if model is not None else ()):
            arrays[f"{prefix}.{name}"] = value
    meta = {"format": FORMAT_VERSION, "step": int(step), "config": config}
    for name, opt in optimizers.items():
        if name in ("format", "step", "config", "rng", "extra", "models", "optimizers"):
            raise ValueError(f"save_state: an optimizer cannot be called {name!r} (a meta key)")
        meta[name] = _pack(opt.state_dict(), name, arrays)
    meta["rng"] = _pack(rng_state, "rng", arrays)
    if extra is not None:
        meta["extra"] = _pack(extra, "extra", arrays)
    bad = _first_nonfinite(arrays)
    if bad is not None:
        raise NonFiniteStateError(f"not saving {path}: '{bad}' holds NaN or Inf")
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_savez(path, arrays)


def save_checkpoint(path, *, G, D, opt_G, opt_D, step, config, rng_state, G_ema=None, extra=None):
    """Write a training checkpoint atomically (see the module docstring).

    Args:
        path: the ``.npz`` file to (over)write.
        G, D: the models; their ``state_dict()`` is saved under ``G.`` and ``D.``.
        opt_G, opt_D: the optimizers; their ``state_dict()`` under ``opt_G.`` and ``opt_D.``.
        step: the number of completed training steps.
        config: the run configuration (a JSON-able dict).
        rng_state: ``backend.get_rng_state()`` (noise, dropout); other randomness of the
            run must be a function of the config and the step.
        G_ema: the generator holding the average of G's weights (``--ema``), saved under ``G_ema.``.
        extra: other training state (the adaptive augmentation probability), JSON-able.

    Raises:
        NonFiniteStateError: some array holds NaN or Inf; nothing is written.
    """
    save_state(path, models={"G": G, "D": D, "G_ema": G_ema}, optimizers={"opt_G": opt_G, "opt_D": opt_D},
               step=step, config=config, rng_state=rng_state, extra=extra)


def read_npz(path):
    """The arrays of an npgan ``.npz`` file (a checkpoint of any kind), as a dict, and its
    ``meta`` entry (a JSON object) parsed: ``(arrays, meta)``.

    Raises:
        ValueError naming the file for anything that is not a complete npgan ``.npz``: a
        missing, truncated or foreign file (a text file, a lone ``.npy``), or one without
        the JSON ``meta`` entry every npgan checkpoint has.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise ValueError(f"{path}: cannot read the checkpoint ({err.strerror or err})") from err
    if head != b"PK\x03\x04":                            # every .npz is a zip archive
        raise ValueError(f"{path}: not an .npz checkpoint (the file is not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: the checkpoint is damaged or truncated ({err})") from err
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not an npgan checkpoint (no JSON 'meta' entry)")
    return arrays, meta


def load_checkpoint(path):
    """Read a checkpoint written by ``save_checkpoint``.

    Returns:
        dict with ``G`` and ``D`` (state dicts of host arrays), ``G_ema`` (the averaged
        generator's, or None), ``opt_G`` and ``opt_D``
        (optimizer state dicts), ``rng`` (for ``backend.set_rng_state``), ``step`` (int),
        ``config`` (dict) and ``extra`` (what ``save_checkpoint`` was given, or None).

    Raises:
        ValueError: the file is not an npgan checkpoint or cannot be read.
    """
    arrays, meta = read_npz(path)
    if not all(key in meta for key in ("opt_G", "opt_D", "rng", "step", "config")):
        raise ValueError(f"{path}: not a `python -m npgan.train` checkpoint (it lacks the optimizer "
                         f"states, step or configuration)")
    models = {prefix: {key[len(prefix) + 1:]: value for key, value in arrays.items()
                       if key.startswith(prefix + ".")} for prefix in ("G", "D", "G_ema")}
    return {
        "G": models["G"],
        "D": models["D"],
        "G_ema": models["G_ema"] or None,
        "opt_G": _unpack(meta["opt_G"], arrays),
        "opt_D": _unpack(meta["opt_D"], arrays),
        "rng": _unpack(meta["rng"], arrays),
        "step": meta["step"],
        "config": meta["config"],
        "extra": _unpack(meta["extra"], arrays) if "extra" in meta else None,
    }


def load_state(path, models, optimizers):
    """Read a checkpoint written by :func:`save_state` with these model prefixes and optimizer names.

    Returns:
        dict with each model prefix (its state dict of host arrays, {} when absent), each
        optimizer name (its state dict), ``rng``, ``step``, ``config`` and ``extra`` (or None).

    Raises:
        ValueError: the file is not an npgan checkpoint, or lacks one of the optimizers, the
            step or the configuration.
    """
    arrays, meta = read_npz(path)
    missing = [key for key in tuple(optimizers) + ("rng", "step", "config") if key not in meta]
    if missing:
        raise ValueError(f"{path}: not a checkpoint of this kind of run (it lacks {', '.join(missing)})")
    state = {prefix: {key[len(prefix) + 1:]: value for key, value in arrays.items() if key.startswith(prefix + ".")}
             for prefix in models}
    state.update({name: _unpack(meta[name], arrays) for name in optimizers})
    state.update(rng=_unpack(meta["rng"], arrays), step=meta["step"], config=meta["config"],
                 extra=_unpack(meta["extra"], arrays) if "extra" in meta else None)
    return state


def load_generator_state(path, averaged=True):
    """Only what sampling needs: ``(G state dict, config, step)``; the averaged generator's
    weights when the run kept an average (``--ema``), which is what its samples show, unless
    ``averaged`` is False (then G's own weights, as trained)."""
    ckpt = load_checkpoint(path)
    return (averaged and ckpt["G_ema"]) or ckpt["G"], ckpt["config"], ckpt["step"]
