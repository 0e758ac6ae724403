"""The ledger: one JSON event per line, read back whatever a crash left."""

from dl_cli.sweep.ledger import Ledger


def test_a_cut_last_line_does_not_swallow_the_next_event(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append("sweep", spec_hash="a")
    with open(ledger.path, "a") as f:
        f.write('{"event": "result", "tri')  # a crash in the middle of a write
    ledger.append("sweep", spec_hash="b", resumed=True)
    assert [e["spec_hash"] for e in Ledger(ledger.path).events()] == ["a", "b"]
    assert ledger.path.read_text().splitlines()[1] == '{"event": "result", "tri'
