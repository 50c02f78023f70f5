"""benchmarks/common.py's records and the committed ones under benchmarks/results/."""

import json


def test_every_committed_record_names_its_command_commit_and_machine():
    """One folder per script under benchmarks/results/: each JSON record there, and each copied run
    folder or table (through its record.json), says which command, commit and machine made it."""
    import glob
    import os

    from benchmarks.common import RESULTS

    folders = sorted(path for path in glob.glob(os.path.join(RESULTS, "*")) if os.path.isdir(path))
    assert folders and not [path for path in glob.glob(os.path.join(RESULTS, "*")) if os.path.isfile(path)]
    records = []
    for folder in folders:
        records += glob.glob(os.path.join(folder, "*.json"))
        records += [os.path.join(sub, "record.json") for sub in glob.glob(os.path.join(folder, "*/"))]
        if not glob.glob(os.path.join(folder, "*.json")) and not glob.glob(os.path.join(folder, "*/")):
            records.append(os.path.join(folder, "record.json"))  # a table, its files not JSON
    for path in records:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        assert all(record.get(key) for key in ("command", "commit", "machine")), path


def test_write_record_heads_a_record_with_command_commit_and_machine(tmp_path):
    from benchmarks.common import write_record

    out = tmp_path / "record.json"
    write_record(str(out), {"value": 1})
    record = json.loads(out.read_text())
    assert list(record)[:3] == ["command", "commit", "machine"] and record["value"] == 1
    assert record["machine"]["cores"] >= 1 and record["machine"]["speed_probe_gflops"] > 0
