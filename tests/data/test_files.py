"""npz and CSV data sets: classification or regression, headers, label columns, class
names and labels, and every malformed file named with the place of the mistake."""

import json
import re
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.data import DataError, load
from dl_cli.schema import DataConfig


def test_npz_loads_classification_with_its_own_test_set(tmp_path, raw):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, X=rng.normal(size=(30, 2, 3)), y=np.arange(30) % 3,
             X_test=rng.normal(size=(6, 2, 3)), y_test=np.arange(6) % 3,
             names=np.array(["a", "b", "c"]))
    data = raw({"type": "npz", "path": str(path)})
    assert data.X.shape == (30, 2, 3) and data.X_test.shape == (6, 2, 3)
    assert data.task == "classification" and data.classes == 3 and data.names == ["a", "b", "c"]
    splits = load(DataConfig(dataset={"type": "npz", "path": str(path)}), seed=0)
    assert len(splits.test) == 6 and splits.in_shape == (2, 3)


def test_npz_float_targets_mean_regression(tmp_path, raw):
    path = tmp_path / "reg.npz"
    np.savez(path, X=np.ones((5, 2)), y=np.linspace(0, 1, 5))
    data = raw({"type": "npz", "path": str(path)})
    assert data.task == "regression" and data.classes is None


def test_npz_with_an_object_array_is_refused(tmp_path, raw):
    path = tmp_path / "objects.npz"
    np.savez(path, X=np.array([[1, "a"], [None, 2]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"objects\.npz.*'X'.*pickle"):
        raw({"type": "npz", "path": str(path)})


@pytest.mark.parametrize("arrays,message", [
    ({"X": np.ones((4, 2))}, "no array named y"),
    ({"X": np.ones((4, 2)), "y": np.arange(3)}, "one row per sample"),
    ({"X": np.ones((4, 2)), "y": np.array([0, 1, -1, 0])}, r"y\[2\]: label -1"),
    ({"X": np.array([[1.0, np.nan], [0, 0]]), "y": np.array([0, 1])}, r"X\[0\]: holds NaN"),
    ({"X": np.ones((4, 2)), "y": np.arange(4), "X_test": np.ones((2, 2))}, "come together"),
])
def test_malformed_npz_raises_data_error_naming_the_file(tmp_path, arrays, message, raw):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=rf"bad\.npz: .*{message}"):
        raw({"type": "npz", "path": str(path)})


def test_missing_and_non_npz_files_raise_data_error(tmp_path, raw):
    with pytest.raises(DataError, match="no such file"):
        raw({"type": "npz", "path": str(tmp_path / "absent.npz")})
    path = tmp_path / "text.npz"
    path.write_text("hello")  # NumPy would try it as a pickle, and advise allow_pickle
    with pytest.raises(DataError, match=r"text\.npz: not a \.npz archive \(the zip of \.npy"):
        raw({"type": "npz", "path": str(path)})


def test_damaged_npz_archives_name_the_file_and_the_array(tmp_path, raw):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, X=np.random.rand(30, 2), y=np.arange(30) % 3)
    data = good.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.npz: not a \.npz archive"):
        raw({"type": "npz", "path": str(cut)})
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(data[:60] + bytes([data[60] ^ 0xFF]) + data[61:])
    with pytest.raises(DataError, match=r"flipped\.npz: array 'X' is damaged"):
        raw({"type": "npz", "path": str(flipped)})
    other = tmp_path / "other.npz"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("X.npy", b"not npy data")
        archive.writestr("y.npy", b"nor this")
    with pytest.raises(DataError, match=r"other\.npz: member 'X' is not \.npy data"):
        raw({"type": "npz", "path": str(other)})


def test_csv_numbers_in_quotes_read_as_numbers(tmp_path, raw):
    path = tmp_path / "quoted.csv"
    path.write_text('"a","b","label"\n"1","2","0"\n"3.5","4","1"\n5,6,2\n')  # as spreadsheets write
    data = raw({"type": "csv", "path": str(path)})
    np.testing.assert_array_equal(data.X, [[1, 2], [3.5, 4], [5, 6]])
    np.testing.assert_array_equal(data.y, [0, 1, 2])


def test_csv_with_header_and_label_column(tmp_path, raw):
    path = tmp_path / "table.csv"
    path.write_text("a,label,b\n1.5,0,2\n-1,1,3e-1\n\n0,2,4\n")
    data = raw({"type": "csv", "path": str(path)})
    np.testing.assert_array_equal(data.X, [[1.5, 2.0], [-1.0, 0.3], [0.0, 4.0]])
    np.testing.assert_array_equal(data.y, [0, 1, 2])
    assert data.classes == 3 and data.y.dtype == np.int64


def test_csv_labels_that_are_words_name_classes_in_sorted_order(tmp_path, raw):
    path = tmp_path / "flowers.csv"
    path.write_text("length,width,species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n"
                    "6.3,3.3,virginica\n4.9,3.0, setosa\n6.4,3.2,versicolor\n")
    data = raw({"type": "csv", "path": str(path), "label": "species"})
    np.testing.assert_array_equal(data.y, [0, 1, 2, 0, 1])
    assert (data.classes, data.names) == (3, ["setosa", "versicolor", "virginica"])
    np.testing.assert_array_equal(data.X[:, 1], [3.5, 3.2, 3.3, 3.0, 3.2])
    path.write_text("length,species\n5.1,setosa\n7.0,\n")
    with pytest.raises(DataError, match=r"flowers\.csv: line 3: no label"):
        raw({"type": "csv", "path": str(path), "label": "species"})
    path.write_text("length,species\n5.1,setosa\n7.0,virginica\n")
    with pytest.raises(DataError, match=r"line 2, column 2: 'setosa' is not a number"):
        raw({"type": "csv", "path": str(path), "label": "species", "task": "regression"})


def test_a_csv_of_named_classes_trains_and_keeps_the_names(tmp_path):
    rng = np.random.default_rng(0)
    species = ["virginica", "setosa", "versicolor"]
    rows = [f"{x:.3f},{y:.3f},{species[k]}" for k in range(3)
            for x, y in rng.normal(loc=3 * k, size=(20, 2))]
    (tmp_path / "flowers.csv").write_text("x,y,species\n" + "\n".join(rows) + "\n")
    config = tmp_path / "flowers.yaml"
    config.write_text(f"name: flowers\nruns_dir: {tmp_path / 'runs'}\n"
                      f"data: {{dataset: {{type: csv, path: {tmp_path / 'flowers.csv'}, "
                      f"label: species}}}}\nmodel: {{layers: [{{type: affine, units: 3}}]}}\n"
                      f"train: {{epochs: 2}}\n")
    result = CliRunner().invoke(app, ["train", str(config), "-q"])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in (tmp_path / "runs" / "flowers").iterdir() if p.name != "latest"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["data"]["class_names"] == ["setosa", "versicolor", "virginica"]


def test_csv_without_header_takes_a_label_index_and_finds_regression(tmp_path, raw):
    path = tmp_path / "plain.csv"
    path.write_text("1,2,0.5\n3,4,1.25\n")
    data = raw({"type": "csv", "path": str(path), "header": False, "label": -1})
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    assert data.task == "regression"
    np.testing.assert_array_equal(data.y, [0.5, 1.25])


@pytest.mark.parametrize("text,message", [
    ("a,b,label\n1,2,0\n\n3,4\n", "line 4: 2 cells where the table has 3"),
    ("a,b,label\n1,2,0\n3,x,1\n", "line 3, column 2: 'x' is not a number"),
    ("a,b,label\n1,2,0\n3,,1\n", "line 3, column 2: '' is not a number"),
    ("a,b,label\n1,2\n3,4\n", "line 2: 2 cells where the header on line 1 names 3"),
    ("a,b,c\n1,2,0\n", "line 1: no column named 'label'"),
    ("a,b,label\n1,2,0\n\n3,nan,1\n", "line 4: holds NaN"),
    ("a,b,label\n", "no data rows"),
])
def test_malformed_csv_names_the_file_and_line(tmp_path, text, message, raw):
    path = tmp_path / "broken.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"broken\.csv: {message}"):
        raw({"type": "csv", "path": str(path)})


def test_every_mistake_of_a_csv_is_in_one_report_up_to_ten(tmp_path, raw):
    path = tmp_path / "broken.csv"
    rows = ["a,b,label", *(f"{i},{i % 3},{i % 2}" for i in range(30))]
    rows[3], rows[7], rows[9] = "3,x,1", "7,1", "y,z,0"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as caught:
        raw({"type": "csv", "path": str(path)})
    assert str(caught.value).splitlines() == [
        f"{path}: line 4, column 2: 'x' is not a number",
        f"{path}: line 8: 2 cells where the table has 3",
        f"{path}: line 10, column 1: 'y' is not a number",
        f"{path}: line 10, column 2: 'z' is not a number"]
    path.write_text("a,b,label\n" + "x,1,0\n" * 25)
    with pytest.raises(DataError) as caught:
        raw({"type": "csv", "path": str(path)})
    lines = str(caught.value).splitlines()
    assert lines[:2] == [f"{path}: line 2, column 1: 'x' is not a number",
                         f"{path}: line 3, column 1: 'x' is not a number"]
    assert len(lines) == 11 and lines[-1] == f"{path}: 15 more mistakes of these kinds"


def test_npz_without_samples_or_features_is_refused(tmp_path, raw):
    for name, X, message in [("empty", np.zeros((0, 4)), r"X \(0, 4\) holds no samples"),
                             ("flat", np.zeros((6, 0)), r"X \(6, 0\) has no features"),
                             ("images", np.zeros((6, 1, 0, 3)), r"X \(6, 1, 0, 3\) has no features")]:
        path = tmp_path / f"{name}.npz"
        np.savez(path, X=X, y=np.arange(len(X)) % 2)
        with pytest.raises(DataError, match=rf"{name}\.npz: {message}"):
            raw({"type": "npz", "path": str(path)})


def test_csv_with_only_the_label_column_is_refused(tmp_path, raw):
    path = tmp_path / "labels.csv"
    path.write_text("label\n0\n1\n")
    with pytest.raises(DataError, match=r"labels\.csv: only the label column"):
        raw({"type": "csv", "path": str(path)})


def test_csv_that_is_not_utf8_is_refused_with_or_without_header(tmp_path, raw):
    path = tmp_path / "latin1.csv"
    path.write_bytes("f\xe9,label\n1,0\n2,1\n".encode("latin-1"))
    for header, label in ((True, "label"), (False, -1)):
        with pytest.raises(DataError, match=r"latin1\.csv: not UTF-8 text"):
            raw({"type": "csv", "path": str(path), "header": header, "label": label})


def test_csv_with_a_byte_order_mark_finds_its_first_column(tmp_path, raw):
    path = tmp_path / "excel.csv"
    path.write_bytes("label,a\n0,1.5\n1,2\n".encode("utf-8-sig"))
    data = raw({"type": "csv", "path": str(path)})
    np.testing.assert_array_equal(data.y, [0, 1])
    np.testing.assert_array_equal(data.X, [[1.5], [2.0]])
    path.write_bytes("0,1.5\n1,2\n".encode("utf-8-sig"))
    data = raw({"type": "csv", "path": str(path), "header": False, "label": 0})
    np.testing.assert_array_equal(data.y, [0, 1])


def test_plus_minus_one_labels_say_how_to_map_them(tmp_path, raw):
    path = tmp_path / "pm1.csv"
    path.write_text("a,label\n1,1\n2,-1\n3,1\n")
    with pytest.raises(DataError, match=r"pm1\.csv: line 3: label -1 is not a class index; class "
                                        r"labels must be whole numbers 0\.\.K-1, got -1, 1: map "
                                        r"them, e.g. -1 → 0, 1 → 1"):
        raw({"type": "csv", "path": str(path), "task": "classification"})


@pytest.mark.parametrize("y,message", [
    (np.array([1, 2, 3, 1, 2, 3]), r"labels 1, 2, 3 leave class 0 without samples; map them to "
                                   r"0\.\.2 \(e\.g\. 1 → 0, 2 → 1, 3 → 2\), or, if they are values "
                                   r"to predict, set the data set's task: regression"),
    (np.array([0, 1, 5, 0, 1, 5]), r"labels 0, 1, 5 leave class 2, 3, 4 without samples.*5 → 2"),
])
def test_class_labels_with_empty_classes_are_refused(tmp_path, y, message, raw):
    npz, csv = tmp_path / "gap.npz", tmp_path / "gap.csv"
    np.savez(npz, X=np.ones((6, 2)), y=y)
    csv.write_text("a,label\n" + "".join(f"1,{label}\n" for label in y))
    for path in (npz, csv):
        with pytest.raises(DataError, match=rf"gap\.(npz|csv): class labels must be 0\.\.K-1, but {message}"):
            raw({"type": path.suffix[1:], "path": str(path)})


def test_npz_names_allow_a_class_without_samples(tmp_path, raw):
    path = tmp_path / "named.npz"
    np.savez(path, X=np.ones((4, 2)), y=np.array([1, 2, 1, 2]), names=np.array(["a", "b", "c"]))
    assert raw({"type": "npz", "path": str(path)}).classes == 3


def test_npz_test_labels_unseen_in_training_are_refused(tmp_path, raw):
    path = tmp_path / "unseen.npz"
    np.savez(path, X=np.ones((6, 2)), y=np.arange(6) % 3, X_test=np.ones((2, 2)), y_test=np.array([2, 4]))
    with pytest.raises(DataError, match=r"unseen\.npz: y_test holds class 4, which no training sample has"):
        raw({"type": "npz", "path": str(path)})


def test_csv_labels_must_be_class_indices_when_classification_is_asked(tmp_path, raw):
    path = tmp_path / "frac.csv"
    path.write_text("a,label\n1,0\n2,0.5\n")
    with pytest.raises(DataError, match=r"frac\.csv: line 3: label 0\.5"):
        raw({"type": "csv", "path": str(path), "task": "classification"})


HUGE_LABELS = [  # file, its contents, where and which label is refused, the labels found
    ("big.csv", "a,label\n1,0\n2,1\n3,1e19\n", r"line 4: label 1e\+19", r"0, 1, 1e\+19"),
    ("big.npz", {"y": np.array([0, 1, 2**63], dtype=np.uint64)}, r"y\[2\]: label 9223372036854775808",
     "0, 1, 9223372036854775808"),
    ("big.npz", {"y": np.array([0, 1, 1], dtype=np.uint64), "X_test": np.ones((2, 2)),
                 "y_test": np.array([1, 2**64 - 1], dtype=np.uint64)},
     r"y_test\[1\]: label 18446744073709551615", "1, 18446744073709551615"),
]


@pytest.mark.parametrize("name,contents,where,found", HUGE_LABELS, ids=["csv", "npz-uint64", "npz-y_test"])
def test_labels_beyond_int64_name_the_file_the_value_and_what_is_allowed(tmp_path, name, contents,
                                                                         where, found, raw):
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text(contents)
    else:
        np.savez(path, X=np.ones((3, 2)), **contents)
    message = (rf"{re.escape(name)}: {where} is too large to be a class index; class labels must "
               rf"be whole numbers 0\.\.K-1, got {found}: map them to 0\.\.\d, or, if they are "
               rf"values to predict, set the data set's task: regression")
    with pytest.raises(DataError, match=message):
        raw({"type": path.suffix[1:], "path": str(path)})


def test_a_label_far_beyond_the_samples_lists_the_first_empty_classes(tmp_path, raw):
    path = tmp_path / "far.csv"
    path.write_text("a,label\n1,0\n2,1\n3,1000000000000\n")  # 0..10**12 in full: 8 TB
    with pytest.raises(DataError, match=r"far\.csv: class labels must be 0\.\.K-1, but labels 0, 1, "
                                        r"1000000000000 leave class 2, 3, 4, 5, 6, 7, … without "
                                        r"samples; map them to 0\.\.2 \(e\.g\. 1000000000000 → 2\)"):
        raw({"type": "csv", "path": str(path)})
