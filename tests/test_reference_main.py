"""``python -m reference``: options, the printed table, the report folder and the exit status."""

import pandas as pd
import pytest

import reference.__main__ as command
from reference.compare import DEFAULT_TOLERANCES, Tolerance


def test_list_prints_the_default_names_without_running(capsys):
    assert command.main(["--list"]) == 0
    names = capsys.readouterr().out.split()
    assert names[:2] == ["linear-sgd-mse-b20-lr0.01-float32-tensorflow", "sigmoid8-adam-mse-b20-lr0.1-float32-tensorflow"]


def test_list_applies_overrides_and_globs(capsys):
    assert command.main(["--list", "--grid", "--configs", "linear-adam-mae-b30-*", "--dtype", "float64", "--epochs", "5"]) == 0
    assert capsys.readouterr().out.split() == [
        "linear-adam-mae-b30-lr0.1-e5-float64-tensorflow", "linear-adam-mae-b30-lr0.01-e5-float64-tensorflow",
        "linear-adam-mae-b30-lr0.001-e5-float64-tensorflow"]


def test_unknown_configuration_is_a_usage_error(capsys):
    assert command.main(["--configs", "no-such-config"]) == 2
    assert "no configuration matches 'no-such-config'" in capsys.readouterr().err


@pytest.fixture
def quick(monkeypatch):
    """Skip the numerics probe (another module's job, and slow); it is printed as not available."""
    monkeypatch.setattr(command, "_verify_profile", lambda: ("verify_tensorflow_profile: skipped in tests", ""))


@pytest.mark.tensorflow
@pytest.mark.sklearn
def test_run_prints_table_and_writes_report(tmp_path, capsys, quick):
    output = tmp_path / "report"
    status = command.main(["--configs", "linear-sgd-mse-b1-lr0.01-float32", "sigmoid8-adam-mse-b20-lr0.1-float64",
                           "--epochs", "3", "--output", str(output)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "[1/2] linear-sgd-mse-b1-lr0.01-e3-float32-tensorflow" in printed
    assert "[2/2] sigmoid8-adam-mse-b20-lr0.1-e3-float64-tensorflow" in printed
    assert printed.count("keras: ok (rel 0.0e+00, 3/3 bit-identical)") == 2  # the default profile reproduces Keras
    assert "compared with" in printed and "bit-identical" in printed and "speed-up" in printed
    for name in ("rows.csv", "summary.csv", "optimum-gaps.csv", "summary.md", "plots/overview.png",
                 "plots/linear-sgd-mse-b1-lr0.01-e3-float32-tensorflow.png",
                 "plots/sigmoid8-adam-mse-b20-lr0.1-e3-float64-tensorflow.png"):
        assert (output / name).stat().st_size > 0, name
    rows = pd.read_csv(output / "rows.csv")
    assert set(rows["epoch"]) == {0, 1, 2, 3}
    assert {"max_abs_diff", "max_rel_diff", "max_ulp", "bit_identical"} <= set(rows.columns)
    markdown = (output / "summary.md").read_text()
    for expected in ("tensorflow:", "keras:", "scikit-learn:", "numpy:", "gdcore:", "command: `python -m reference --configs"):
        assert expected in markdown
    summary = pd.read_csv(output / "summary.csv")
    assert set(summary["engines"]) >= {"gdcore vs keras", "gdcore vs sklearn.SGDRegressor", "gdcore vs sklearn.MLPRegressor"}


@pytest.mark.tensorflow
@pytest.mark.sklearn
def test_classification_rows_in_the_table_and_the_report(tmp_path, capsys, quick):
    output = tmp_path / "report"
    status = command.main(["--configs", "logistic-sgd-bce-b1-lr0.1-float32", "softmax-sgd-scce-b20-lr0.1-float64",
                           "--epochs", "3", "--no-plots", "--output", str(output)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "[1/2] logistic-sgd-bce-b1-lr0.1-e3-float32-tensorflow" in printed
    assert "[2/2] softmax-sgd-scce-b20-lr0.1-e3-float64-tensorflow" in printed
    assert "cross-entropies vs Keras under plain numerics: float32 rtol" in printed
    summary = pd.read_csv(output / "summary.csv")
    engines = set(summary["engines"])
    assert {"gdcore vs keras", "gdcore vs sklearn.SGDClassifier", "gdcore vs sklearn.LogisticRegression",
            "gdcore vs sklearn.MLPClassifier"} <= engines
    keras = summary[summary["engines"] == "gdcore vs keras"]
    assert (keras["status"] == "ok").all()
    assert list(keras["rtol"]) == [DEFAULT_TOLERANCES[dtype].rtol for dtype in ("float32", "float64")]
    assert list(keras["bit_identical_epochs"]) == [3, 3]  # the tensorflow profile: the cross-entropies to the bit
    rows = pd.read_csv(output / "rows.csv")
    assert {"accuracy", "val_accuracy"} <= set(rows["quantity"])
    gaps = pd.read_csv(output / "optimum-gaps.csv")
    assert set(gaps["config"]) == {"logistic-sgd-bce-b1-lr0.1-e3-float32-tensorflow"} and len(gaps) == 4
    markdown = (output / "summary.md").read_text()
    assert "a cross-entropy vs Keras under plain numerics" in markdown
    assert "| logistic-sgd-bce-b1-lr0.1-e3-float32-tensorflow | sklearn.SGDClassifier | ok |" in markdown


@pytest.mark.tensorflow
def test_exit_status_is_one_when_a_comparison_is_beyond_tolerance(tmp_path, capsys, quick, monkeypatch):
    monkeypatch.setattr("reference.runner.default_tolerance", lambda dtype: Tolerance(0.0, 0.0))
    # The plain profile differs from Keras in the last bits, so a zero tolerance must fail.
    status = command.main(["--configs", "sigmoid8-adam-mse-b20-lr0.1-float32", "--epochs", "2", "--engines", "keras", "--numerics", "plain",
                           "--no-plots", "--output", str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 1
    assert "FAIL" in printed and "first epoch beyond tolerance" in printed
    assert "## Failures" in (tmp_path / "summary.md").read_text()


@pytest.mark.tensorflow
def test_free_runs_compare_seeded_cells_with_nothing_imposed(tmp_path, capsys, quick):
    status = command.main(["--free", "--grid", "--configs", "linear-sgd-mse-b30-lr0.01-float32", "sigmoid8-adam-mae-b20-lr0.1-float64",
                           "--epochs", "3", "--no-plots", "--output", str(tmp_path / "report")])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert printed.count("keras (free): ok (rel 0.0e+00, 3/3 bit-identical)") == 2, printed
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert list(summary["engines"]) == ["gdcore vs keras (free)"] * 2


@pytest.mark.tensorflow
def test_free_runs_take_classifiers_too(tmp_path, capsys, quick):
    status = command.main(["--free", "--configs", "softmax-sgd-scce-b20-lr0.1-float64", "--epochs", "2", "--no-plots",
                           "--output", str(tmp_path / "report")])
    printed = capsys.readouterr().out
    assert status == 0, printed
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert list(summary["engines"]) == ["gdcore vs keras (free)"] and list(summary["status"]) == ["ok"]
    assert list(summary["rtol"]) == [DEFAULT_TOLERANCES["float64"].rtol]  # the tensorflow profile: to the bit
    assert list(summary["bit_identical_epochs"]) == [2]
    rows = pd.read_csv(tmp_path / "report" / "rows.csv")
    assert {"accuracy", "val_accuracy", "dense/kernel"} <= set(rows["quantity"])  # each cell's own draws, recorded
