"""Sampling: random draws by seed and index, grids, repeat seeds and variants crossed
with the parameters."""

import numpy as np

from dl_cli.sweep.sampling import plan_round, sample_configuration
from dl_cli.sweep.spec import Domain, load_spec


def test_random_parameters_depend_only_on_seed_and_index():
    domains = {"lr": Domain("loguniform", (1e-4, 1e-1)), "units": Domain("values", (64, 128)),
               "n": Domain("int_loguniform", (1, 64))}
    draws = [sample_configuration(domains, 0, i) for i in range(300)]
    assert sample_configuration(domains, 0, 17) == draws[17]
    assert [sample_configuration(domains, 1, i) for i in range(300)] != draws
    lrs = np.array([d["lr"] for d in draws])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-1
    per_decade = np.histogram(np.log10(lrs), bins=[-4, -3, -2, -1])[0]
    assert per_decade.min() > 70  # each decade about a third of 300 draws
    assert {d["units"] for d in draws} == {64, 128}
    assert all(1 <= d["n"] <= 64 and isinstance(d["n"], int) for d in draws)


def test_repeat_seeds_share_a_configuration(tmp_path, write_sweep, random_spec):
    spec = load_spec(write_sweep(tmp_path, {**random_spec, "seeds": [5, 6]}))
    plans = plan_round(spec, spec.params, 0)
    assert [(p.index, p.config, p.seed) for p in plans[:4]] == [(0, 0, 5), (1, 0, 6), (2, 1, 5), (3, 1, 6)]
    assert plans[0].params == plans[1].params != plans[2].params


def test_variants_cross_the_params_and_the_seeds(tmp_path, write_sweep, random_spec, variants):
    spec = load_spec(write_sweep(tmp_path, {"method": "grid", "variants": variants, "seeds": [0, 1],
                                            "params": {"optimizer.lr": {"values": [0.01, 0.1]}}}))
    plans = plan_round(spec, spec.params, 0)
    assert [(p.index, p.config, p.variant, p.params["optimizer.lr"], p.seed) for p in plans] == [
        (0, 0, "relu", 0.01, 0), (1, 0, "relu", 0.01, 1), (2, 1, "relu", 0.1, 0), (3, 1, "relu", 0.1, 1),
        (4, 2, "tanh", 0.01, 0), (5, 2, "tanh", 0.01, 1), (6, 3, "tanh", 0.1, 0), (7, 3, "tanh", 0.1, 1)]
    drawn = load_spec(write_sweep(tmp_path / "random", {**random_spec, "variants": variants}))
    plans = plan_round(drawn, drawn.params, 0)
    assert len(plans) == 2 * random_spec["trials"]
    assert [p.params for p in plans[:4]] == [p.params for p in plans[4:]]  # the same draws
    assert [p.params for p in plans[:4]] == [sample_configuration(drawn.params, 0, i) for i in range(4)]
    second = plan_round(drawn, drawn.params, 1)  # a refined round continues the numbering
    assert [p.config for p in second] == list(range(8, 16))
    assert second[0].params == second[4].params == sample_configuration(drawn.params, 0, 4)
