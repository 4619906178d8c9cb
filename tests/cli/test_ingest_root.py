"""``backtape ingest`` at the top level (as the README and issue 3 write it) builds a bundle."""

from __future__ import annotations

from typer.testing import CliRunner

from backtape.cache.bundles import BundleMetadata
from backtape.cli.app import app


def test_root_ingest_then_bundles_show(tmp_path) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    args = ["ingest", "synthetic", "--symbols", "ACME", "--start", "2024-01-02", "--end", "2024-02-01",
            "--frequency", "1d", "--bundle", "demo", "--bundles-dir", str(tmp_path)]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    meta = BundleMetadata.load("demo", bundles_dir=tmp_path)
    assert list(meta.symbols) == ["ACME"] and meta.row_count == 21
    shown = runner.invoke(app, ["bundles", "show", "demo", "--bundles-dir", str(tmp_path)])
    assert shown.exit_code == 0 and "ACME" in shown.output
