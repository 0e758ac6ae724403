"""``write_report``: a study's ``report.md`` beside its PNG figures.

The report holds:

- the claim, and how the sweep ran (base config, variants, parameters, seeds);
- one row per configuration (a variant and its parameter values): the sweep's metric,
  the final training and validation scores and the test score, each the mean ± sample
  standard deviation over the seeds, and how many trials diverged;
- ``curves.png``: each variant's learning curves (its best configuration, mean over seeds);
- the study's own section, from ``SECTIONS`` by the name under ``report: {study: NAME}``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..layout import SweepLayout
from ..numbers import short
from ..storage import RunError
from .architecture import (activations_section, bottleneck_section, cnn_vs_mlp_section,
                           depth_residual_section, init_section)
from .distributed import distributed_section
from .figures import curves_figure
from .fitting import polynomial_section, regularization_section, weight_decay_section
from .learning_rate import batchnorm_section, clipping_section, optimizers_section, schedules_section
from .representation import autoencoder_vs_pca_section
from .study import Group, ReportError, Study, at_last_epoch, load_study, metric_of, on_test
from .text import table

SECTIONS = {"init": init_section, "activations": activations_section,
            "regularization": regularization_section, "batchnorm": batchnorm_section,
            "optimizers": optimizers_section, "schedules": schedules_section,
            "polynomial": polynomial_section, "weight_decay": weight_decay_section,
            "depth_residual": depth_residual_section, "clipping": clipping_section,
            "cnn_vs_mlp": cnn_vs_mlp_section, "bottleneck": bottleneck_section,
            "autoencoder_vs_pca": autoencoder_vs_pca_section, "distributed": distributed_section}


LISTED_POINTS = 20  # a domain with more points is described by its kind and bounds


def where_from(path: Path, folder: Path) -> str:
    """``path`` as the report shows it, never absolute: from the working directory (the
    project) when it lies below it, else from the sweep ``folder``."""
    path, cwd = Path(path).resolve(), Path.cwd().resolve()
    if path.is_relative_to(cwd):
        return str(path.relative_to(cwd))
    return os.path.relpath(path, Path(folder).resolve())


def how_it_ran(study: Study) -> str:
    spec = study.spec
    parts = [f"Sweep `{spec.name}` (folder `{Path(study.folder).name}`), base config "
             f"`{where_from(spec.base, study.folder)}`"]
    if spec.variants:
        parts.append(f"variants: {', '.join(spec.variants)}")
    for path, domain in spec.params.items():
        size = domain.size()
        if size is not None and size <= LISTED_POINTS:
            parts.append(f"{path} ∈ {{{', '.join(short(domain.point(i)) for i in range(size))}}}")
        else:  # a continuous or long domain is named, never listed
            parts.append(f"{path}: {domain.describe()}")
    if spec.seeds:
        parts.append(f"seeds {spec.seeds}")
    if spec.overrides:
        parts.append(f"overrides {' '.join(spec.overrides)}")
    return "; ".join(parts) + "."


def status_text(group: Group) -> str:
    counts: dict[str, int] = {}
    for trial in group.trials:
        counts[trial.state.status] = counts.get(trial.state.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def results_table(study: Study) -> str:
    score, metric = study.score, study.spec.metric
    header = ["configuration", "trials", f"{metric} (best epoch)", f"train/{score} (last epoch)",
              f"val/{score} (last epoch)", f"test/{score}", "epochs"]
    rows = [[group.label, status_text(group), group.cell(metric_of),
             group.cell(at_last_epoch(f"train/{score}")),
             group.cell(at_last_epoch(f"val/{score}")),
             group.cell(on_test(f"test/{score}")),
             group.cell(lambda t: t.state.epochs, 6)] for group in study.groups]
    return table(header, rows)


def write_report(folder: Path, out_dir: Path | None = None) -> Path:
    """Write ``report.md`` and its PNG figures into ``out_dir`` (default ``folder/report``)
    and return the path of ``report.md``."""
    study = load_study(folder)
    if study.kind is not None and study.kind not in SECTIONS:
        raise ReportError(f"{SweepLayout(folder).spec}: report.study: unknown study {study.kind!r}; "
                          f"known: {', '.join(SECTIONS)}")
    out = Path(out_dir) if out_dir is not None else Path(folder) / "report"
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {study.spec.name}", ""]
    if study.spec.claim:
        lines += ["**Claim.** " + study.spec.claim, ""]
    lines += [how_it_ran(study), "", "## Results", "",
              "Each cell: the mean ± sample standard deviation over the seeds of the trials "
              "that did not diverge (the trials column counts those that did).", "",
              results_table(study), "",
              curves_figure(study, out), ""]
    if study.kind is not None:
        try:
            section = SECTIONS[study.kind](study, out)
        except (RunError, OSError, KeyError, IndexError, ValueError) as error:
            section = [f"## {study.kind}", f"This section could not be drawn: "
                                           f"{type(error).__name__}: {error}"]
        for block in section:
            lines += [block, ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
