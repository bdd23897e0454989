"""Atomic tables: a table under its final name is complete and has its own provenance."""

import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from cot_potential import tables
from cot_potential.tables import provenance_path, read_json, read_table, write_table


def test_a_table_never_appears_without_its_provenance(tmp_path, monkeypatch):
    def broken(path, obj):
        raise OSError("disk full")

    monkeypatch.setattr(tables, "write_json", broken)
    with pytest.raises(OSError):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet", {"seed": 1})
    assert not (tmp_path / "t.parquet").exists()


def test_the_sidecar_is_the_tables_own(tmp_path):
    write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet", {"seed": 1})
    write_table(pd.DataFrame({"a": [2]}), tmp_path / "t.parquet", {"seed": 2})
    assert read_json(provenance_path(tmp_path / "t.parquet")) == {"seed": 2}
    assert read_table(tmp_path / "t.parquet")["a"].tolist() == [2]


# A writer that leaves a real, half-written parquet under its temporary name and then hangs
# until it is SIGKILLed, as a job is when its node dies or the OOM killer strikes.
KILLED_WRITER = textwrap.dedent("""
    import os, sys, time
    import pandas as pd
    from cot_potential.tables import atomic_write

    def half_then_hang(tmp):
        pd.DataFrame({"x": range(200_000)}).to_parquet(tmp)
        os.truncate(tmp, os.path.getsize(tmp) // 2)
        print("half-written", flush=True)
        time.sleep(600)

    atomic_write(sys.argv[1], half_then_hang)
""")


@pytest.mark.parametrize("existing", [False, True], ids=["new", "rewrite"])
def test_a_writer_killed_mid_write_leaves_no_table_or_the_old_one(tmp_path, existing):
    target = tmp_path / "shard-0.parquet"
    if existing:
        write_table(pd.DataFrame({"x": [7]}), target)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "half-written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    leftovers = list(tmp_path.glob(".shard-0.parquet.*.tmp"))
    assert len(leftovers) == 1
    with pytest.raises(Exception):
        pd.read_parquet(leftovers[0])  # it really is a broken parquet ...
    if existing:  # ... and it never replaced the finished table
        assert read_table(target)["x"].tolist() == [7]
    else:
        assert not target.exists()
    assert sorted(p.name for p in tmp_path.glob("shard-*.parquet")) == (["shard-0.parquet"] if existing else [])
