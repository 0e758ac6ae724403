"""python -m benchmarks.distributed runs end to end on tiny sizes (no timing assertions:
only that every way of training is timed and the dask rows show their transfer)."""

from benchmarks import distributed as benchmark


def test_every_workload_is_timed_in_this_process_and_on_1_and_2_workers(cluster):
    table = benchmark.main(["--size", "tiny", "--repeats", "1"], cluster=cluster)
    lines = table.splitlines()
    assert lines[0] == "| " + " | ".join(benchmark.HEADER) + " |"
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:]]
    assert [row[1] for row in rows] == ["dl train", "dl train --threads 1", "dask, 1 worker",
                                        "dask, 2 workers"] * 2
    assert rows[0][0].startswith("W1") and rows[4][0].startswith("W2")
    for row in rows:
        assert float(row[2]) > 0 and float(row[4]) > 0
        assert (row[5] != "" and row[6].endswith("%")) == row[1].startswith("dask")
