"""The errors a training run stops with, and the exit status every command returns for them.

    0    done
    2    invalid arguments, or data / a run / a checkpoint that cannot be used (argparse's status)
    3    training diverged: a loss or gradient became NaN or Inf (``NonFiniteError``)
    130  stopped by Ctrl-C (the shell's status for SIGINT)
"""
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NONFINITE = 3
EXIT_INTERRUPTED = 130


class NonFiniteError(RuntimeError):
    """A loss or gradient is NaN or Inf; ``where`` names the first non-finite quantity, ``step``
    the training step (None until the training loop adds it)."""

    def __init__(self, where, step=None):
        super().__init__(where if step is None else f"step {step}: {where}")
        self.where, self.step = where, step
