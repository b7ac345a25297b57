"""Data-parallel training: one run on the N ranks of a process group (``npgan.comm``), as PyTorch's
DistributedDataParallel does it, written out.

    every rank          draws the same global batch (the same seeded data order and noise
                        generator) and keeps its own slice of it: rank r, samples r*B .. r*B+B-1
                        of the global batch N*B (``rank_slice``)
    forward, backward   on the slice only; a SyncBatchNorm (``--sync-bn``) takes its statistics
                        over all N slices, a plain BatchNorm over its own
    before each update  ``average_gradients``: every gradient of the model packed into one flat
                        buffer, all-reduced (one call per model, not one per tensor) and divided
                        by N; each rank then applies the same update to the same weights
    at the start        ``broadcast_model``: rank 0's weights, BatchNorm statistics and optimizer
                        state on every rank (a resumed run's are rank 0's checkpoint)
    outputs             rank 0 alone writes (checkpoints, samples, metrics, pictures)

With SyncBatchNorm, N ranks at batch B compute the step of one process at batch N*B (the
gradient of the mean loss over the global batch), up to float32 summation order.
"""
import numpy as np

from .. import backend


def rank_slice(group, global_batch):
    """The rows of a global batch of ``global_batch`` samples that ``group.rank`` trains on."""
    if global_batch % group.size:
        raise ValueError(f"a global batch of {global_batch} cannot be split evenly over {group.size} processes")
    per_rank = global_batch // group.size
    return slice(group.rank * per_rank, (group.rank + 1) * per_rank)


def _flat(arrays):
    xp = backend.get_array_module(arrays[0])
    return xp.concatenate([a.reshape(-1) for a in arrays])


def _unflatten(flat, arrays):
    start = 0
    for a in arrays:
        a[...] = flat[start:start + a.size].reshape(a.shape)
        start += a.size


def gradient_averager(group):
    """``sync(params)`` for ``Optimizer.gradient_sync``: each parameter's gradient replaced by its
    mean over the ranks, all of them in one flat all-reduce."""
    def sync(params):
        grads = [p.grad for p in params]
        flat = group.allreduce(_flat(grads))
        flat /= group.size
        _unflatten(flat, grads)
    return sync


def broadcast_model(group, model, optimizer=None):
    """Rank 0's parameters and buffers (BatchNorm's running statistics), and ``optimizer``'s state
    when given, on every rank: the ranks start from the same point."""
    arrays = [p.data for p in model.parameters()] + [b for _, b in model.named_buffers() if b is not None]
    flat = group.broadcast(_flat(arrays))
    _unflatten(flat, arrays)
    if optimizer is not None:
        optimizer.load_state_dict(group.allgather(optimizer.state_dict() if group.rank == 0 else None)[0])


def same_on_every_rank(group, what, value):
    """Raise ValueError naming the ranks that hold a different ``value`` (a JSON-able object,
    e.g. the run's configuration) than rank 0."""
    values = group.allgather(value)
    differ = [r for r, v in enumerate(values) if v != values[0]]
    if differ:
        raise ValueError(f"the processes disagree on {what}: rank{'s' if len(differ) > 1 else ''} "
                         f"{', '.join(map(str, differ))} differ from rank 0")


def bytes_per_step(*models, dtype=np.float32):
    """The bytes one data-parallel step all-reduces for these models' gradients (each once)."""
    return sum(int(p.data.size) for m in models for p in m.parameters()) * np.dtype(dtype).itemsize
