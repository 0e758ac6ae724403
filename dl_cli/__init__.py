"""dl: a deep-learning lab in NumPy alone, driven from YAML configs.

The Python API (``dl_cli/trained.py``), imported on first use so that ``import dl_cli``
stays instant:

```python
import dl_cli as dl
run = dl.load_run("runs/digits-mlp")     # the newest finished run, or a run folder
run.predict(X_raw), run.predict_proba(X_raw), run.model, run.config, run.summary
run = dl.train("configs/digits_mlp.yaml", overrides=["optimizer.lr=1e-3"])
```
"""

__version__ = "0.1.0"
__all__ = ["TrainedRun", "__version__", "load_run", "train"]


def __getattr__(name: str):
    """``load_run``, ``train`` and ``TrainedRun``, from ``trained.py`` when first asked for."""
    if name in ("load_run", "train", "TrainedRun"):
        from . import trained

        return {"load_run": trained.load_run, "train": trained.train,
                "TrainedRun": trained.TrainedRun}[name]
    raise AttributeError(f"module 'dl_cli' has no attribute {name!r}")
