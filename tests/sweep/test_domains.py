"""Parameter domains: their points, draws that never list them, narrowing, and the
limits on what a domain may hold."""

import json

import numpy as np
import pytest

from dl_cli.sweep.sampling import grid_configuration, grid_configurations, sample_configuration
from dl_cli.sweep.spec import Domain, SpecError, load_spec


def test_grid_sizes_and_log_spaced_points():
    domains = {"a": Domain("values", ("x", "y", "z")), "b": Domain("range", (0.0, 1.0, 0.25)),
               "c": Domain("int_uniform", (1, 4)), "d": Domain("loguniform", (1e-4, 1e-1), grid=4)}
    assert domains["b"].points() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert domains["d"].points() == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1], rel=1e-12)
    assert Domain("int_loguniform", (1, 1000), grid=4).points() == [1, 10, 100, 1000]
    assert Domain("uniform", (0.0, 1.0), grid=3).points() == [0.0, 0.5, 1.0]
    assert Domain("range", (32, 128, 32)).points() == [32, 64, 96, 128]
    everything = grid_configurations(domains)
    assert len(everything) == 3 * 5 * 4 * 4
    assert all(grid_configuration(domains, i) == c for i, c in enumerate(everything))
    assert len({json.dumps(c, sort_keys=True) for c in everything}) == len(everything)


def test_huge_integer_domains_are_never_listed(tmp_path, monkeypatch, write_sweep):
    huge = {"seed": Domain("int_uniform", (0, 10**12)), "units": Domain("range", (1, 10**12, 1)),
            "lr": Domain("range", (0.0, 1.0, 1e-12))}
    expected = []
    for index in range(5):  # the draws the listing gave: lo + integers(size)
        rng = np.random.default_rng([0, index])
        expected.append({"seed": int(rng.integers(10**12 + 1)), "units": 1 + int(rng.integers(10**12)),
                         "lr": round(int(rng.integers(10**12 + 1)) * 1e-12, 12)})

    def never(self):
        raise AssertionError(f"{self.kind} listed its points")

    monkeypatch.setattr(Domain, "points", never)
    assert [sample_configuration(huge, 0, i) for i in range(5)] == expected
    assert grid_configuration(huge, 10**12 + 7) == {"seed": 0, "units": 2, "lr": 6e-12}
    path = write_sweep(tmp_path, {"method": "grid", "params": {
        "seed": {"int_uniform": [0, 10**12]}, "model.layers.0.units": {"range": [1, 10**12, 1]}}})
    with pytest.raises(SpecError) as caught:  # counted, not listed, and refused
        load_spec(path)
    assert caught.value.errors == [
        "params.seed: the sweep would plan 1,000,000,000,001,000,000,000,000 trials = "
        "1,000,000,000,000 (params.model.layers.0.units) × 1,000,000,000,001 (params.seed); "
        "at most 100,000"]
    path = write_sweep(tmp_path, {"method": "grid", "params": {
        "optimizer.lr": {"range": [0.001, 0.1, 1.0e-12]}}})
    with pytest.raises(SpecError, match=r"^params\.optimizer\.lr: the sweep would plan 99,000,000,001"):
        load_spec(path)


def test_refined_ranges_stay_inside_the_original_domain():
    assert Domain("int_loguniform", (3, 10**7)).narrowed([10**7]).args[1] == 10**7
    assert Domain("loguniform", (1e-4, 1e-1)).narrowed([1e-1]).args[1] == 1e-1
    assert Domain("loguniform", (1e-4, 1e-1)).narrowed([1e-4]).args[0] == 1e-4
    assert Domain("int_loguniform", (3, 10**7)).narrowed([3]).args[0] == 3


@pytest.mark.parametrize("domain, error", [
    ({"uniform": [0.001, 0.1], "grid": 10**9},
     "params.x.grid: must be an integer from 2 to 10000 (points of the grid), got 1000000000 (integer)"),
    ({"range": [1.0e-300, 1.0e+300, 1.0e-300]},
     "params.x.range: [lo, hi, step] = [1e-300, 1e+300, 1e-300] has inf points; at most 1e+18: "
     "take a larger step"),
    ({"range": [1, 10**23, 1]}, "params.x.range: integers must lie within ±10**18, got [1, "
                                "100000000000000000000000, 1]"),
    ({"range": [1, 1.0e+23, 1]}, "params.x.range: [lo, hi, step] = [1, 1e+23, 1] has 1e+23 points; "
                                 "at most 1e+18: take a larger step"),
    ({"int_uniform": [1, 10**24]}, "params.x.int_uniform: integers must lie within ±10**18, got "
                                   "[1, 1000000000000000000000000]"),
    ({"range": [0, 10**400, 0.5]}, "params.x.range: expected [lo, hi, step] of finite numbers, got "
                                   "[0, 1000000"),
    ({"uniform": [-1.0e+308, 1.0e+308]},
     "params.x.uniform: hi - lo must be a finite number, got [lo, hi] = [-1e+308, 1e+308]"),
])
def test_domains_too_large_to_draw_from_are_refused_as_read(tmp_path, domain, error, spec_errors,
                                                            random_spec):
    (message,) = spec_errors(tmp_path, {**random_spec, "params": {"x": domain}})
    assert message.startswith(error), message


def test_the_largest_domains_allowed_still_draw(tmp_path, write_sweep, random_spec):
    spec = load_spec(write_sweep(tmp_path, {**random_spec, "params": {
        "a": {"int_uniform": [-10**18, 10**18]}, "b": {"int_loguniform": [1, 10**18]},
        "c": {"range": [0.0, 1.0, 1.0e-18 * 1.01]}, "d": {"loguniform": [1e-300, 1e300], "grid": 10_000}}}))
    draws = [sample_configuration(spec.params, 0, i) for i in range(20)]
    assert all(-10**18 <= d["a"] <= 10**18 and 1 <= d["b"] <= 10**18 and 0 <= d["c"] <= 1
               for d in draws)
    assert len({d["d"] for d in draws}) > 10
