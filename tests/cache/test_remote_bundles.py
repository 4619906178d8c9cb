"""Bundles on object storage: push, pull and direct read against moto's S3 server (a real subprocess on
127.0.0.1), with checksums, interrupted pushes, credentials kept out of every message, and the CLI."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from _upstream import CountingSource
from polars.testing import assert_frame_equal

from backtape.cache.bundles import BundleDataSource, ingest_to_bundle, scan_bundles
from backtape.cache.remote_bundles import (
    ObjectStoreError,
    RemoteBundleDataSource,
    _Remote,
)
from backtape.config import load_config
from backtape.errors import BacktapeError, ConfigError, CorruptCacheError, NoDataError
from backtape.sources.base import DataSource
from backtape.workspace import Workspace

SECRET = "sEcReT-do-not-print-0123456789"
SYMBOLS = ["AAA", "BBB", "CCC"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
              "AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    return values


@pytest.fixture
def bucket(env: dict[str, str]) -> str:
    import boto3

    name = f"bt-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key=SECRET).create_bucket(Bucket=name)
    return name


@pytest.fixture
def ws(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Workspace:
    config = tmp_path / "backtape.yaml"
    config.write_text(f"data:\n  bundles_dir: {tmp_path / 'bundles'}\n  cache_dir: {tmp_path / 'cache'}\n")
    monkeypatch.setenv("BACKTAPE_CONFIG", str(config))
    return Workspace(load_config(config))


def _ingest(ws: Workspace, name: str = "daily") -> None:
    ingest_to_bundle(name, SYMBOLS, "2020-01-01", "2022-01-01", "1d", source=CountingSource(),
                     bundles_dir=ws.bundles_dir)


def _all_rows(source: DataSource) -> pl.DataFrame:
    return source.fetch_sync(SYMBOLS, "2020-01-01", "2022-01-01", "1d")


def _s3(env: dict[str, str]) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key=SECRET)


def test_push_pull_and_direct_read_give_every_row(ws: Workspace, bucket: str, env: dict[str, str]) -> None:
    _ingest(ws)
    original = _all_rows(BundleDataSource("daily", ws.bundles_dir))
    assert original.height > 1000
    manifest = ws.bundles.push("daily", f"s3://{bucket}/team/bars")
    keys = {o["Key"] for o in _s3(env).list_objects_v2(Bucket=bucket)["Contents"]}
    assert {f"team/bars/daily/{f.path}" for f in manifest.files} | {"team/bars/daily/manifest.json"} == keys

    pulled = ws.bundles.pull(f"s3://{bucket}/team/bars/daily", name="copy")
    assert pulled.name == "copy" and set(pulled.symbols) == set(SYMBOLS)
    assert_frame_equal(_all_rows(BundleDataSource("copy", ws.bundles_dir)), original)
    assert {m.name for m in scan_bundles(ws.bundles_dir)[0]} == {"daily", "copy"}
    assert not (ws.bundles_dir / ".partial").exists()

    direct = ws.source(f"bundle:s3://{bucket}/team/bars/daily")
    assert isinstance(direct, RemoteBundleDataSource)
    assert_frame_equal(_all_rows(direct), original)
    assert direct.get_metadata().details["path"] == f"s3://{bucket}/team/bars/daily"
    assert SECRET not in repr(direct.get_metadata()) and SECRET not in manifest.to_json().decode()


def test_direct_read_fetches_only_the_asked_symbols(ws: Workspace, bucket: str) -> None:
    _ingest(ws)
    ws.bundles.push("daily", f"s3://{bucket}/p")
    direct = RemoteBundleDataSource(f"s3://{bucket}/p/daily", ws.storage_options())
    one = direct.fetch_sync("BBB", "2021-01-01", "2021-02-01", "1d")
    assert set(one.get_column("symbol")) == {"BBB"} and one.height > 15
    local = sorted(p.name for p in direct._root.rglob("*.parquet") if p.name != "metadata.parquet")
    assert local and all("BBB" in str(p) for p in direct._root.rglob("*.parquet")
                         if p.name != "metadata.parquet")
    mirror = direct._root.parent
    direct.close()
    assert not mirror.exists()


def test_damaged_object_fails_its_checksum(ws: Workspace, bucket: str, env: dict[str, str]) -> None:
    _ingest(ws)
    manifest = ws.bundles.push("daily", f"s3://{bucket}/p")
    victim = next(f.path for f in manifest.files if f.path.startswith("data/") and "AAA" in f.path)
    key = f"p/daily/{victim}"
    s3 = _s3(env)
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))

    with pytest.raises(CorruptCacheError, match="fails its checksum") as pulled:
        ws.bundles.pull(f"s3://{bucket}/p/daily", name="copy")
    assert victim in str(pulled.value) and "\n" not in str(pulled.value)
    assert not (ws.bundles_dir / "copy").exists() and not (ws.bundles_dir / ".partial").exists()

    direct = ws.source(f"bundle:s3://{bucket}/p/daily")
    assert direct.fetch_sync("BBB", "2021-01-01", "2021-02-01", "1d").height > 0  # intact symbol reads
    with pytest.raises(CorruptCacheError, match="fails its checksum"):
        direct.fetch_sync("AAA", "2021-01-01", "2021-02-01", "1d")


def test_interrupted_push_leaves_no_bundle(ws: Workspace, bucket: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _ingest(ws)
    real = _Remote.write
    written: list[str] = []

    def failing(self: _Remote, rel: str, data: bytes) -> None:
        if len(written) == 3:
            raise ObjectStoreError("simulated network failure")
        written.append(rel)
        real(self, rel, data)

    monkeypatch.setattr(_Remote, "write", failing)
    with pytest.raises(ObjectStoreError):
        ws.bundles.push("daily", f"s3://{bucket}/p")
    monkeypatch.setattr(_Remote, "write", real)
    assert len(written) == 3 and "manifest.json" not in written
    with pytest.raises(NoDataError, match="no remote bundle"):
        ws.bundles.pull(f"s3://{bucket}/p/daily")
    with pytest.raises(NoDataError, match="no remote bundle"):
        ws.source(f"bundle:s3://{bucket}/p/daily")
    assert not (ws.bundles_dir / ".partial").exists()
    ws.bundles.push("daily", f"s3://{bucket}/p")  # a later push completes it
    assert ws.bundles.pull(f"s3://{bucket}/p/daily", name="copy").row_count > 0


def test_replacing_a_remote_bundle_needs_replace(ws: Workspace, bucket: str) -> None:
    _ingest(ws)
    ws.bundles.push("daily", f"s3://{bucket}/p")
    with pytest.raises(ConfigError, match="--replace"):
        ws.bundles.push("daily", f"s3://{bucket}/p")
    ws.bundles.push("daily", f"s3://{bucket}/p", replace=True)
    with pytest.raises(ConfigError, match="already exists"):
        ws.bundles.pull(f"s3://{bucket}/p/daily")


def test_errors_are_one_line_and_never_show_the_secret(ws: Workspace, bucket: str,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _ingest(ws)
    failures: list[BacktapeError] = []
    for call, kind, text in (
        (lambda: ws.bundles.push("daily", "s3://no-such-bucket-xyz/p"), ObjectStoreError, "no bucket"),
        (lambda: ws.bundles.pull(f"s3://{bucket}/nothing/here"), NoDataError, "no remote bundle"),
        (lambda: ws.bundles.pull("http://example.invalid/x"), ConfigError, "s3://bucket"),
    ):
        with pytest.raises(kind, match=text) as err:
            call()
        failures.append(err.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(ObjectStoreError, match="unreachable") as err:
        Workspace(ws.config).bundles.pull(f"s3://{bucket}/p/daily")
    failures.append(err.value)
    for exc in failures:
        assert "\n" not in str(exc) and SECRET not in str(exc) and SECRET not in repr(exc)
    assert SECRET not in caplog.text


def test_access_denied_is_reported(ws: Workspace, bucket: str, env: dict[str, str]) -> None:
    _ingest(ws)
    import json

    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                                      "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}
    _s3(env).put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    try:
        ws.bundles.push("daily", f"s3://{bucket}/p")
    except ObjectStoreError as exc:  # moto enforces bucket policies only in some versions
        assert "access denied" in str(exc) and SECRET not in str(exc)
    else:
        pytest.skip("this moto version does not enforce bucket policies")


def test_command_line_round_trip(ws: Workspace, bucket: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from backtape.cli.app import app

    _ingest(ws)
    runner = CliRunner()
    folder = str(ws.bundles_dir)
    pushed = runner.invoke(app, ["bundles", "push", "daily", f"s3://{bucket}/cli", "--bundles-dir", folder])
    assert pushed.exit_code == 0, pushed.output
    assert f"s3://{bucket}/cli/daily" in pushed.output
    pulled = runner.invoke(app, ["bundles", "pull", f"s3://{bucket}/cli/daily", "--name", "again",
                                 "--bundles-dir", folder])
    assert pulled.exit_code == 0, pulled.output
    assert "bundle again: 3 symbol(s)" in pulled.output
    assert runner.invoke(app, ["bundles", "verify", "again", "--bundles-dir", folder]).exit_code == 0
    assert_frame_equal(_all_rows(BundleDataSource("again", folder)),
                       _all_rows(BundleDataSource("daily", folder)))
    missing = runner.invoke(app, ["--verbose", "bundles", "pull", f"s3://{bucket}/cli/nope",
                                  "--bundles-dir", folder])
    assert missing.exit_code == 2 and "no remote bundle at" in missing.output
    denied = runner.invoke(app, ["--log-json", "bundles", "push", "daily", "s3://no-such-bucket-xyz/p",
                                 "--bundles-dir", folder])
    assert denied.exit_code == 2 and "no bucket" in denied.output
    for result in (pushed, pulled, missing, denied):
        assert SECRET not in result.output


def test_a_damaged_local_bundle_is_not_pushed(ws: Workspace, bucket: str) -> None:
    _ingest(ws)
    victim = next((ws.bundles_dir / "daily" / "data").rglob("*.parquet"))
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(CorruptCacheError, match="bundles verify daily"):
        ws.bundles.push("daily", f"s3://{bucket}/p")
    with pytest.raises(NoDataError, match="no remote bundle"):
        ws.bundles.pull(f"s3://{bucket}/p/daily")
