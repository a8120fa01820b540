"""The local cluster's operator errors are one clear line."""

import os
import socket
import subprocess
import sys

import pytest

from referral_service import localdb
from referral_service.errors import OperatorError


def test_refuses_a_data_folder_of_another_major_version(tmp_path):
    cluster = localdb.Cluster(name="old", port=localdb.free_port(), data_dir=tmp_path)
    cluster.pgdata.mkdir(parents=True)
    (cluster.pgdata / "PG_VERSION").write_text("14\n")
    with pytest.raises(OperatorError, match="holds a PostgreSQL 14 cluster; this project needs 15"):
        cluster.start()


def test_port_taken_by_another_program(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        cluster = localdb.Cluster(name="busy", port=squatter.getsockname()[1], data_dir=tmp_path)
        try:
            with pytest.raises(OperatorError, match=r"port \d+ on 127.0.0.1 is taken by another program"):
                cluster.start()
        finally:
            cluster.destroy()


def test_missing_binaries(monkeypatch, tmp_path):
    monkeypatch.setattr(localdb, "PG_BIN", tmp_path / "nowhere")
    with pytest.raises(OperatorError, match="binaries not found.*apt-get install"):
        localdb.pg_bin("initdb")


def test_cli_prints_one_line_without_traceback(tmp_path):
    data = tmp_path / "data"
    (data / "pg" / "data").mkdir(parents=True)
    (data / "pg" / "data" / "PG_VERSION").write_text("13\n")
    done = subprocess.run(
        [sys.executable, "-m", "referral_service.cli", "db", "start"],
        capture_output=True, text=True, env={**os.environ, "REFERRAL_DATA_DIR": str(data)},
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "PostgreSQL 13" in done.stderr and "Traceback" not in done.stderr
