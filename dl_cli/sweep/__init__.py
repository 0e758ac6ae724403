"""Hyperparameter sweeps: grid, random and TPE search over any key of a train config.

```
spec.py        the sweep spec: base config, params, metric, seeds, refine, prune, k-fold
spec_keys.py   its keys of more than one value: metric, params, variants, report
base_config.py the spec against its base config (prepare), each trial's config (resolve)
domains.py     values, range, uniform, loguniform, int_uniform, int_loguniform; grid: N
sampling.py    trial parameters from (sweep seed, configuration index) alone
planning.py    each trial's validated config, a dry run's build check, refined domains
trial.py       run_trial(config, folder, until=..., kfold=K): one trial (the mean over K
               folds with dl_cli/crossval.py), any executor, never raises
pruning.py     successive halving (sha) and the median rule, on the sweep's own table
tpe.py         model-based search: Optuna's TPE asked and told in rounds of `batch`
ledger.py      the append-only JSON-lines record of every trial's state
executors.py   in-process, local processes, Dask or Ray behind concurrent.futures
workers.py     what the driver tells of the processes training its trials, by their locks
folder.py      the sweep folder: create, check before a resume, lock
runner.py      the driver: submit, record, prune, refine, drain on Ctrl-C, resume, what is left
results.py     ranking, leaderboard, results.csv, best.yaml
importance.py  which parameters mattered: permutation importance, partial dependence (dl plot)
```
"""
