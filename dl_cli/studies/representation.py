"""The report section of the unsupervised study: autoencoders against PCA.

| study | what it adds |
|---|---|
| autoencoder_vs_pca | test reconstruction error against the bottleneck k: PCA, linear and ReLU autoencoders |

PCA is computed here, on the trial's own splits (the same preprocessing): the top k
right singular vectors ``V_k`` of the centred training inputs, and the test error of
``x̂ = μ + (x − μ)·V_k·V_kᵀ``, the mean over every test value of ``(x − x̂)²``, which is
what a run reports as ``test/mse``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..schema import Config
from .architecture import family_of
from .figures import error_bars, legend, new_figure, save
from .measures import data_of
from .study import Study
from .text import mean_std, table


def bottleneck_of(cfg: Config) -> int:
    """The code size of an autoencoder: the fewest units of its affine layers."""
    return min(spec["units"] for spec in cfg.model.layers
               if isinstance(spec, dict) and spec.get("type") == "affine")


def pca_test_error(cfg: Config, k: int) -> float:
    """The test MSE of the reconstruction from the first k principal components of the
    training split of ``cfg``'s data."""
    splits = data_of(cfg)
    train = splits.train.X.reshape(len(splits.train), -1).astype(np.float64)
    test = splits.test.X.reshape(len(splits.test), -1).astype(np.float64)
    mean = train.mean(axis=0)
    _, _, Vt = np.linalg.svd(train - mean, full_matrices=False)
    centred = test - mean
    return float(np.mean((centred - centred @ Vt[:k].T @ Vt[:k]) ** 2))


def autoencoder_vs_pca_section(study: Study, out: Path) -> list[str]:
    """Each trial's test MSE beside PCA's on the same split (the seed draws the split)."""
    families = list(dict.fromkeys(family_of(g.variant or g.label) for g in study.groups))
    sizes = sorted({bottleneck_of(g.config) for g in study.groups})
    pca: dict[int, dict[int, float]] = {k: {} for k in sizes}  # k → seed → PCA's error
    errors, ratios = {}, {}
    for group in study.groups:
        k, key = bottleneck_of(group.config), (family_of(group.variant or group.label),)
        for trial in group.trials:
            value = trial.test("test/mse")
            if trial.diverged or value is None:
                continue
            seed = trial.config.seed
            if seed not in pca[k]:
                pca[k][seed] = pca_test_error(trial.config, k)
            errors.setdefault((*key, k), []).append(value)
            ratios.setdefault((*key, k), []).append(value / pca[k][seed])
    fig, (ax,) = new_figure(1, "test MSE against the bottleneck k\n(mean ± std over seeds)")
    means, stds = error_bars([list(pca[k].values()) for k in sizes], math.nan)
    ax.errorbar(sizes, means, yerr=stds, fmt="k--", marker="s", capsize=3,
                label="PCA, k components")
    for family in families:
        means, stds = error_bars([errors.get((family, k), []) for k in sizes], math.nan)
        ax.errorbar(sizes, means, yerr=stds, marker="o", capsize=3,
                    label=f"{family} autoencoder, k units")
    ax.set(xlabel="k", ylabel="test MSE per value", xscale="log", yscale="log")
    ax.minorticks_off()
    ax.set_xticks(sizes, [str(k) for k in sizes])
    legend(ax)
    image = save(fig, out, "error_vs_k.png")
    header = ["k", "PCA"]
    for family in families:
        header += [f"{family} autoencoder", f"{family} / PCA"]
    rows = []
    for k in sizes:
        row = [str(k), mean_std(list(pca[k].values()))]
        for family in families:
            row += [mean_std(errors.get((family, k), [])),
                    mean_std(ratios.get((family, k), []), 3)]
        rows.append(row)
    return ["## Reconstruction error against the bottleneck", image,
            "Test MSE per pixel value (inputs scaled to [0, 1]), mean ± std over seeds; PCA "
            "is fitted on the training split of each seed, and each trial's error is divided "
            "by PCA's on its own split (a ratio below 1: less error than PCA).",
            table(header, rows)]
