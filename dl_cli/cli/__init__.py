"""The `dl` command line, one module per group of commands; the modules of ``dl_cli``
do the work, the commands parse, call them and print.

```
app.py         the Typer app, its commands, --version
output.py      consoles, errors, warnings, exit codes, the command line's own checks
interrupts.py  what a Ctrl-C outside training and the sweep runner says and leaves
train.py       dl train
inspect.py     dl gradcheck, summary, layers (a config's model); eval, sample, diagnose,
               runs, compare (what training left)
sweep.py       dl sweep, plot, report
records.py     export_records: what earlier runs recorded, to TensorBoard or MLflow
               (dl export --to)
```
"""
