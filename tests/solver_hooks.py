"""Test hooks into the Solver shared by the training and reliability tests."""

import signal

from dl_cli.solver import Solver


def interrupt_at(monkeypatch, step_count: int) -> None:
    """Make the Solver receive SIGINT after ``step_count`` iterations."""
    original = Solver.step

    def step(self, idx):
        loss = original(self, idx)
        if self.step_count + 1 == step_count:
            self._stop_signal = signal.SIGINT
        return loss

    monkeypatch.setattr(Solver, "step", step)
