"""The studies of the notes' later chapters on a small budget: autoencoders against PCA,
and the block costs of replacing large convolutions; and the numbers ``dl report``
prints for them."""

import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app

pytest.importorskip("matplotlib")

from dl_cli.studies.architecture import receptive_field  # noqa: E402
from dl_cli.studies.measures import model_of  # noqa: E402
from dl_cli.studies.representation import bottleneck_of, pca_test_error  # noqa: E402


def report_table(study, heading: str) -> list[list[str]]:
    """The rows of the table under ``heading`` in the study's report.md."""
    result = CliRunner().invoke(app, ["report", str(study.folder)])
    assert result.exit_code == 0, result.output
    text = (study.folder / "report" / "report.md").read_text()
    section = text.split(heading, 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


@pytest.mark.slow
def test_the_autoencoder_report_sets_each_trial_beside_pca(tmp_path, run_study):
    study = run_study("autoencoder_vs_pca", tmp_path, variants=["linear-4", "relu-4"],
                      overrides=["train.epochs=30"])
    linear = next(g for g in study.groups if g.label == "linear-4")
    assert bottleneck_of(linear.config) == 4
    pca = pca_test_error(linear.config, 4)
    assert pca_test_error(linear.config, 64) < 1e-12 < pca  # all 64 components: exact
    linear_mse = linear.trials[0].test("test/mse")
    rows = report_table(study, "## Reconstruction error against the bottleneck")
    assert len(rows) == 1
    k, pca_cell, linear_cell, ratio_cell, relu_cell, relu_ratio = rows[0]
    assert (k, pca_cell, linear_cell) == ("4", f"{pca:.4g}", f"{linear_mse:.4g}")
    assert float(ratio_cell) == pytest.approx(linear_mse / pca, abs=5e-3)  # 3 digits
    assert float(relu_ratio) < 1 and float(relu_cell) < pca  # even after 30 epochs


@pytest.mark.slow
def test_two_3x3_cost_18_c_squared_where_a_5x5_costs_25(tmp_path, run_study):
    study = run_study("bottleneck", tmp_path, overrides=["train.epochs=1"])
    C = 32
    rows = {row[0]: row for row in report_table(study, "## The block: receptive field")}
    block = {name: int(row[3].replace(",", "")) for name, row in rows.items()}
    assert block["conv-5x5"] == 25 * C * C + C
    assert block["two-3x3"] == 18 * C * C + 2 * C
    assert block["conv-3x3"] == 9 * C * C + C
    assert block["1x1-then-3x3"] == C * C // 4 + 8 + 9 * C * C // 4 + C  # 2.5·C², biases
    assert rows["conv-5x5"][2] == rows["two-3x3"][2] == "5×5"
    assert rows["1x1-then-3x3"][2] == "3×3" and receptive_field([1, 3]) == 3
    macs = {name: int(row[4].replace(",", "")) for name, row in rows.items()}
    assert macs["two-3x3"] * 25 == macs["conv-5x5"] * 18  # 8×8 outputs, same channels
    five = model_of(next(g for g in study.groups if g.label == "conv-5x5").config)
    assert sum(r["params"] for r in five.summary()) == int(rows["conv-5x5"][5].replace(",", ""))
