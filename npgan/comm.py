"""Process groups: the communication data-parallel training needs, behind one small interface.

A group has ``rank`` (0 .. size-1), ``size``, and four collective calls every rank makes in the
same order:

    allreduce(buf)          sum ``buf`` over the ranks, in place on every rank (host or device array)
    broadcast(buf, root=0)  every rank's ``buf`` becomes root's, in place
    allgather(obj)          the list of every rank's Python object, in rank order
    any(flag)               True on every rank when ``flag`` is True on one of them

    MPIGroup()      the processes ``mpiexec -n N`` started, through mpi4py (a well-kept MPI
                    binding; ``pip install mpi4py mpich``). mpi4py is imported only here, only
                    when an MPIGroup is made: a single-process run never loads it.
    ThreadGroup(n)  n ranks as n threads of one process (``.ranks()``, one view per thread), the
                    same calls implemented with a barrier: the tests and the tutorial use it to
                    run a data-parallel step without MPI.
    SINGLE          one process: every call returns at once (size 1).

Device arrays (CuPy) cross MPI through a host copy: the pip build of MPICH is not CUDA-aware.
"""
import threading

import numpy

from .backend import asnumpy, get_array_module


class SingleProcess:
    """The group of one process: nothing to communicate."""
    rank, size = 0, 1

    def allreduce(self, buf):
        return buf

    def broadcast(self, buf, root=0):
        return buf

    def allgather(self, obj):
        return [obj]

    def any(self, flag):
        return bool(flag)


SINGLE = SingleProcess()


class MPIGroupError(RuntimeError):
    """Data parallelism asked for where it cannot run (no mpi4py, not started by mpiexec)."""


class MPIGroup:
    """The ranks of ``MPI.COMM_WORLD``. Raises MPIGroupError without mpi4py."""

    def __init__(self):
        try:
            from mpi4py import MPI
        except ImportError as err:
            raise MPIGroupError(f"data-parallel training needs mpi4py and an MPI library (pip install mpi4py "
                                f"mpich): {err}") from None
        self._mpi, self._comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self._comm.Get_rank(), self._comm.Get_size()

    def allreduce(self, buf):
        host = numpy.ascontiguousarray(asnumpy(buf))           # buf itself when it is a contiguous host array
        self._comm.Allreduce(self._mpi.IN_PLACE, host, op=self._mpi.SUM)
        if host is not buf:
            buf[...] = get_array_module(buf).asarray(host)
        return buf

    def broadcast(self, buf, root=0):
        host = numpy.ascontiguousarray(asnumpy(buf))
        self._comm.Bcast(host, root=root)
        if host is not buf:
            buf[...] = get_array_module(buf).asarray(host)
        return buf

    def allgather(self, obj):
        return self._comm.allgather(obj)

    def any(self, flag):
        return bool(self._comm.allreduce(int(bool(flag)), op=self._mpi.MAX))


class ThreadGroup:
    """``n`` ranks in one process, one thread each: ``ranks()`` gives the n group views to hand
    the threads (each rank's calls must come from its own thread). Sums are taken in rank order,
    so every rank gets the same bits."""

    def __init__(self, n):
        if n < 1:
            raise ValueError(f"ThreadGroup: need at least one rank, got {n}")
        self.size = n
        self._barrier = threading.Barrier(n)
        self._slots = [None] * n

    def ranks(self):
        return [_ThreadRank(self, r) for r in range(self.size)]

    def _exchange(self, rank, value):
        """Every rank's ``value``, in rank order, once all have given theirs."""
        self._slots[rank] = value
        self._barrier.wait()
        values = list(self._slots)
        self._barrier.wait()                        # nobody overwrites a slot before all have read
        return values


class _ThreadRank:
    def __init__(self, group, rank):
        self._group, self.rank, self.size = group, rank, group.size

    def allreduce(self, buf):
        parts = self._group._exchange(self.rank, buf.copy())
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        buf[...] = total
        return buf

    def broadcast(self, buf, root=0):
        buf[...] = self._group._exchange(self.rank, buf.copy())[root]
        return buf

    def allgather(self, obj):
        return self._group._exchange(self.rank, obj)

    def any(self, flag):
        return any(self._group._exchange(self.rank, bool(flag)))


def run_ranks(group, fn):
    """``fn(rank_view)`` on every rank of a ThreadGroup, each in its own thread; returns the
    results in rank order, or raises the first rank's exception."""
    results, errors = [None] * group.size, [None] * group.size

    def target(view):
        try:
            results[view.rank] = fn(view)
        except BaseException as err:                # noqa: BLE001 - handed to the caller
            errors[view.rank] = err
            group._barrier.abort()                  # the other ranks stop waiting
    threads = [threading.Thread(target=target, args=(view,)) for view in group.ranks()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next((e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)), None)
    if first is None:
        first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results
