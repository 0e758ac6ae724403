"""The sweep driver: plan trials, hand them to an executor, record everything in the ledger.

```python
spec, base = prepare("configs/sweep_digits.yaml")      # every mistake before any trial
folder = open_sweep(spec, base)                          # folder.py; or resume=DIR
outcome = SweepRunner(spec, base, folder, make_backend("local", workers=2)).run()
```

The driver alone samples parameters, submits ``run_trial`` calls (at most one per
executor slot), and appends each start, result and pruning verdict to the ledger. A
resumed sweep replays the ledger and submits only what is not done. Ctrl-C once: no new
trials, the running ones finish (drain); twice: the running trials save their state
and stop (local worker processes get SIGTERM, an in-process trial is asked directly);
three times (or a backend whose trials cannot be signalled, Dask or Ray): leave at
once; ``request_stop()`` counts as one Ctrl-C, a SIGTERM as two. Whatever happened, the
ledger holds every completed result.

Observers (``SweepRunner(..., observers=[...])`` or ``runner.observers``) are called as
``observer(event, payload)``, in order, on the driver's thread: ``submitted`` {trial,
until} as a trial is handed to the executor (``until``: the rung's epochs, None to the
end); ``recorded`` {trial, until, state} once its result is in the ledger (``state``: its
TrialState); ``pruned`` {rung, kept, pruned} at each rung's verdict, with the
configurations that go on and those pruned.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape

from ..checks import ConfigError
from ..config import config_to_dict, dump_config
from ..config.validation import validate
from ..layout import RunLayout, SweepLayout
from ..schema import Config
from ..stopping import signal_name
from ..storage import write_text
from .pruning import above_median, promote, rung_scores, rungs
from .domains import parse_domain
from .executors import Backend
from .folder import SweepError, sweep_lock
from .ledger import FINAL, Ledger, SweepWriteError, TrialState
from .results import (best_configuration, best_yaml, counts, describe_trial, outranked,
                      results_csv, trials_table)
from .planning import refined, resolve_plan, trial_name
from .sampling import TrialPlan, plan_round
from .base_config import resolve
from .spec import Domain, SweepSpec
from .trial import NO_SPACE, run_trial
from .workers import POOL_BROKE, trial_result, wait_for_earlier_workers

BREAKS_IN_A_ROW = 3  # pools that broke with no trial ending in between: the workers cannot run


# -- the driver -----------------------------------------------------------------------
@dataclass
class Outcome:
    exit_code: int          # 0: a trial completed; 1: none did, --fail-fast, no space; 130: Ctrl-C
    table: dict[int, TrialState]
    interrupted: bool
    failed_fast: bool
    complete: bool          # every trial reached a final state
    out_of_space: bool = False  # a trial could not write: no new trials were started


class SweepRunner:
    def __init__(self, spec: SweepSpec, base: dict, folder: Path, backend: Backend,
                 console: Console | None = None, retry_failed: bool = False,
                 fail_fast: bool = False, configs: dict[int, Config] | None = None,
                 observers=(), break_lock: bool = False):
        """``configs``: trial configs already resolved (the first round's, by the command
        line that checked them), so that they are not resolved again. ``break_lock``:
        trials take their folders over from processes of other machines."""
        self.spec, self.base, self.folder, self.backend = spec, base, Path(folder), backend
        self.layout = SweepLayout(folder)
        self.console = console or Console(stderr=True)
        self.retry_failed, self.fail_fast = retry_failed, fail_fast
        self.break_lock = break_lock
        self.ledger = Ledger(self.layout.ledger)
        self.table = self.ledger.table()  # kept current by every append
        self.configs: dict[int, Config] = dict(configs or {})
        self.interrupts = 0
        self.failed_fast = False
        self.out_of_space = False
        self.breaks_in_a_row = 0  # worker pools replaced since a trial last ended
        self.live: Live | None = None
        self.cleared: set[int] = set()  # trials whose checkpoints were deleted (outranked)
        self.observers = list(observers)  # observer(event, payload): see the module docstring

    @property
    def draining(self) -> bool:
        return self.interrupts > 0 or self.failed_fast or self.out_of_space

    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """What one Ctrl-C does: the first, no new trials (drain); the second, stop the
        running trials, which save their state; the third, leave at once. A SIGTERM
        counts as two."""
        self.interrupts = self.interrupts + 1 if signum == signal.SIGINT else max(self.interrupts + 1, 2)
        name = signal_name(signum)
        if self.interrupts == 1:
            self._say(f"[yellow]{name}: no new trials; waiting for the running ones to "
                      f"finish (Ctrl-C again to stop them)[/]")
        elif self.interrupts == 2 and self.backend.can_terminate:
            self._say(f"[yellow]{name}: stopping the running trials (they save their state; "
                      f"Ctrl-C again to leave at once)[/]")
        else:
            self._say(f"[yellow]{name}: leaving now; running trials continue from their "
                      f"last checkpoint on resume[/]")

    def trials_left(self) -> tuple[int, int]:
        """(trials still to run, trials in all): every trial the spec plans; a trial in a
        final state is done, except a failed one with retry_failed."""
        total = self.spec.trial_count
        done = sum(s.status in FINAL and not (self.retry_failed and s.status == "failed")
                   for s in self.table.values())
        return total - done, total

    def run(self) -> Outcome:
        with sweep_lock(self.folder), self._signals(), self._display():
            wait_for_earlier_workers([self.layout.trial(s.index) for s in self.table.values()
                                      if s.status == "running"])
            self._reset_failed()
            domains: dict[str, Domain] | None = self.spec.params
            for round_index in range(self.spec.rounds):
                if round_index > 0 and self.spec.refine:
                    domains = self._next_domains(domains, round_index)
                    if domains is None:
                        break
                plans = plan_round(self.spec, domains, round_index, self.table)
                self._declare(plans)
                if self.spec.prune:
                    self._run_rungs(plans)
                else:
                    self._run_batch([(p.index, None) for p in plans if self._needs(p.index, None)])
                if self.draining:
                    break
        return self._finish()

    # -- bookkeeping ------------------------------------------------------------------
    def _log(self, event: str, **fields) -> None:
        self.ledger.append(event, **fields)

    def _notify(self, event: str, **payload) -> None:
        for observer in self.observers:
            observer(event, payload)

    def _reset_failed(self) -> None:
        if not self.retry_failed:
            return
        for state in [s for s in self.table.values() if s.status == "failed"]:
            shutil.rmtree(self.layout.trial(state.index), ignore_errors=True)
            self._log("retry", trial=state.index)

    def _next_domains(self, domains: dict[str, Domain], round_index: int) -> dict[str, Domain] | None:
        """The round's domains: those the ledger recorded for it (a retried trial may have
        changed the table since), else narrowed around the previous round's best."""
        recorded = self.ledger.rounds()
        if round_index in recorded:
            errors: list[str] = []
            kept = {path: parse_domain(raw, f"round {round_index}: {path}", errors)
                    for path, raw in recorded[round_index].items()}
            if errors:
                raise SweepError("the ledger's refined domains are unreadable: " + "; ".join(errors))
            return kept
        narrowed = refined(self.spec, domains, self.table, round_index)
        if narrowed is None:
            self._say(f"round {round_index}: no completed configuration to refine around; stopping")
            return None
        self._log("round", round=round_index, domains={path: d.to_yaml() for path, d in narrowed.items()})
        self._say(f"round {round_index}: " + ", ".join(
            f"{p} {d.describe()}" for p, d in narrowed.items() if d.continuous))
        return narrowed

    def _declare(self, plans: list[TrialPlan]) -> None:
        """Record the round's trials in the ledger (checking those already there) and
        resolve their configs; a config the schema refuses is a failed trial."""
        new = []
        for plan in plans:
            known = self.table.get(plan.index)
            if known is None:
                event = {"event": "trial", "trial": plan.index, "round": plan.round,
                         "config": plan.config, "seed": plan.seed, "params": plan.params}
                new.append(event if plan.variant is None else {**event, "variant": plan.variant})
            elif (json.dumps([known.params, known.variant], sort_keys=True)
                  != json.dumps([plan.params, plan.variant], sort_keys=True)):
                raise SweepError(f"refusing to resume {self.folder}: the spec changed since the "
                                 f"sweep started (the ledger's trial {plan.index} has "
                                 f"{describe_trial(known.params, known.variant)}, the spec now "
                                 f"gives {describe_trial(plan.params, plan.variant)}); start a "
                                 f"new sweep, or restore the spec")
        if new:
            self.ledger.extend(new)
        for plan in plans:
            if plan.index in self.configs:
                continue
            try:
                self.configs[plan.index] = resolve_plan(self.spec, self.base, plan)
            except ConfigError as error:
                if self.table[plan.index].status not in FINAL:
                    self._log("result", trial=plan.index, status="failed", metric=None,
                              epochs=0, error=f"invalid config: {error}", time_s=0.0)

    def _needs(self, index: int, until: int | None) -> bool:
        """Whether the trial still has to train: to the end (``until`` None), or to the rung
        of ``until`` epochs, which it needs unless it reported there. A trial interrupted
        on its way to a later rung has reported at this one; one interrupted before it is
        sent to this rung, whatever epoch its checkpoint holds (the rung's score is read
        at the rung's epoch, see ``trial.run_trial``)."""
        state = self.table[index]
        if state.status in FINAL:
            return False
        return until is None or until not in state.rungs

    # -- successive halving -----------------------------------------------------------
    def _run_rungs(self, plans: list[TrialPlan]) -> None:
        prune = self.spec.prune
        longest = max((self.configs[p.index].train.epochs for p in plans if p.index in self.configs),
                      default=0)
        if longest == 0:
            return
        schedule = rungs(prune.min_epochs, prune.eta, longest)
        for epochs in schedule:
            self._run_batch([(p.index, epochs) for p in plans if self._needs(p.index, epochs)])
            if self.draining or epochs == schedule[-1]:
                return
            self._prune(plans, epochs)

    def _prune(self, plans: list[TrialPlan], epochs: int) -> None:
        """Keep the configurations of this rung the rule lets go on, prune the others'
        paused trials. Decided from the ledger alone, so a resumed sweep reaches the same
        verdicts; the median rule also reads the earlier rounds' scores at this rung."""
        groups: dict[int, list[TrialState]] = {}
        for plan in plans:
            groups.setdefault(plan.config, []).append(self.table[plan.index])
        min_epochs = self.spec.prune.min_epochs
        scores = rung_scores([self.table[p.index] for p in plans], epochs, min_epochs)
        if self.spec.prune.rule == "median":
            earlier = [s for s in self.table.values() if s.round < plans[0].round]
            keep = above_median(scores, rung_scores(earlier, epochs, min_epochs), self.spec.goal)
        else:
            keep = promote(scores, self.spec.prune.eta, self.spec.goal)
        for config in scores:
            for trial in groups[config]:
                if config not in keep and trial.status not in FINAL:
                    self._log("prune", trial=trial.index, rung=epochs)
        self._drop_outranked_checkpoints()
        pruned = [c for c in scores if c not in keep]
        self._notify("pruned", rung=epochs, kept=sorted(keep), pruned=sorted(pruned))
        if pruned:
            self._say(f"rung {epochs} epochs: {len(keep)} of {len(scores)} configurations go on; "
                      f"pruned {', '.join(map(str, sorted(pruned)))}")

    # -- running ----------------------------------------------------------------------
    def _submit(self, index: int, until: int | None) -> Future:
        self._log("start", trial=index, until=until)
        args = (run_trial, config_to_dict(self.configs[index]), str(self.layout.trial(index)))
        options = {"until": until, "kfold": self.spec.kfold, "metric": self.spec.metric,
                   "goal": self.spec.goal, "threads": self.spec.threads,
                   "break_lock": self.break_lock}
        try:
            return self.backend.executor.submit(*args, **options)
        except BrokenProcessPool:
            self.breaks_in_a_row += 1
            if self.breaks_in_a_row >= BREAKS_IN_A_ROW:
                raise SweepError(
                    f"the worker processes died {self.breaks_in_a_row} times in a row before "
                    f"any trial ended: they cannot start or cannot train here (a worker's "
                    f"error, if it printed one, is above). Fix the cause, then continue with: "
                    f"dl sweep --resume {self.folder}") from None
            self.backend.replace_broken()
            return self.backend.executor.submit(*args, **options)

    def _run_batch(self, items: list[tuple[int, int | None]]) -> None:
        queue = deque(items)
        running: dict[Future, tuple[int, int | None]] = {}
        while running or (queue and not self.draining):
            while queue and not self.draining and len(running) < self.backend.slots:
                index, until = queue.popleft()
                running[self._submit(index, until)] = (index, until)
                self._notify("submitted", trial=index, until=until)
            done, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                index, until = running.pop(future)
                outcome = trial_result(future, until, self.layout.trial(index),
                                       stopping=self.interrupts >= 2)
                self._record(index, until, outcome)
                if outcome.get("error") == POOL_BROKE and not self.draining:
                    queue.append((index, until))  # a bystander: it continues from last.npz
            if self.interrupts >= 2 and running:
                self.backend.terminate([self.layout.trial(i) for i, _ in running.values()])
            if self.interrupts >= 3 or self.interrupts >= 2 and not self.backend.can_terminate:
                return  # abandon: the ledger says running, a resume continues them
            self._refresh()

    def _drop_outranked_checkpoints(self) -> None:
        """With ``keep_checkpoints: best``, delete the checkpoints of every configuration
        that can no longer become the best (``results.outranked``) as soon as it cannot:
        a long sweep keeps only the checkpoints that may still matter."""
        if self.spec.keep_checkpoints != "best":
            return
        for trial in outranked(self.table, self.spec):
            if trial.index not in self.cleared:
                for npz in RunLayout(self.layout.trial(trial.index)).checkpoint_files():
                    npz.unlink()
                self.cleared.add(trial.index)

    def _record(self, index: int, until: int | None, result: dict) -> None:
        fields = {"metric": None, "epochs": 0, "time_s": 0.0, "error": None, **result}
        self._log("result", trial=index, **{**fields, "until": until})
        self._drop_outranked_checkpoints()
        state = self.table[index]
        if state.status != "interrupted":
            self.breaks_in_a_row = 0
        if (state.error or "").startswith(NO_SPACE) and not self.out_of_space:
            self.out_of_space = True
            self._say(f"[red]trial {index} could not write[/]: {escape(str(state.error))}; no new "
                      f"trials, waiting for the running ones")
        if state.status == "failed":
            self._say(f"[red]trial {index} failed[/]: {escape(str(state.error))} "
                      f"(traceback in {RunLayout(self.layout.trial(index)).error})")
            if self.fail_fast and not self.failed_fast:
                self.failed_fast = True
                self._say("--fail-fast: no new trials; waiting for the running ones")
        elif self.live is None and state.status != "interrupted":
            values = describe_trial(state.params, state.variant)
            metric = "-" if state.metric is None else f"{state.metric:.4f}"
            self._say(f"trial {index} {state.status}: {self.spec.metric} {metric} "
                      f"({state.epochs} epochs, {state.time_s:.1f} s) {escape(values)}")
        self._notify("recorded", trial=index, until=until, state=state)

    def _finish(self) -> Outcome:
        try:
            self._write_results()
        except OSError as error:
            raise SweepWriteError(f"cannot write {error.filename}: "
                                  f"{error.strerror or error}") from None
        complete = not self.draining and all(s.status in FINAL for s in self.table.values())
        self._drop_outranked_checkpoints()
        interrupted = self.interrupts > 0
        completed = any(s.status == "completed" for s in self.table.values())
        code = (1 if self.failed_fast or self.out_of_space else 130 if interrupted
                else 0 if completed else 1)
        return Outcome(code, self.table, interrupted, self.failed_fast, complete,
                       self.out_of_space)

    def _write_results(self) -> None:
        """results.csv, and best.yaml once a configuration is scored."""
        write_text(self.layout.results, results_csv(self.table, self.spec))
        best = best_configuration(self.table, self.spec)
        if best is not None:
            first = best.trials[0]
            cfg = self.configs.get(first.index) or resolve(
                self.base, best.params, first.seed, trial_name(self.spec, first.index),
                self.spec.changes(first.variant))
            config = validate({**config_to_dict(cfg), "name": f"{self.spec.name}-best"})
            write_text(self.layout.best, best_yaml(dump_config(config), best, self.spec, self.folder))

    # -- terminal ---------------------------------------------------------------------
    def _say(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True)

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(trials_table(self.table, self.spec))

    @contextmanager
    def _display(self):
        if not self.console.is_terminal:
            yield
            return
        with Live(trials_table(self.table, self.spec), console=self.console,
                  refresh_per_second=4, transient=True) as live:
            self.live = live
            try:
                yield
            finally:
                self.live = None
        self._say(f"{self.spec.name}: {counts(self.table)}")

    @contextmanager
    def _signals(self):
        """SIGINT and SIGTERM call ``request_stop`` while the sweep runs."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, lambda signum, frame: self.request_stop(signum))
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
