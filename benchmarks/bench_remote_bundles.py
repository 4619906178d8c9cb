"""Benchmark: push, pull and direct read of a ~10 MB bundle against moto's S3 server on 127.0.0.1.

Data: 1-minute synthetic bars of several symbols ingested into a bundle. Peer: boto3 uploading and
downloading the same files (``upload_file``/``download_file``, no checksums, no manifest) in the same
run, so the table shows what the manifest, checksums and atomic rename cost beside a plain copy.

Run: ``python benchmarks/bench_remote_bundles.py``
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from backtape.cache.bundles import ingest_to_bundle
from backtape.cache.remote_bundles import RemoteBundleDataSource, pull_bundle, push_bundle
from backtape.sources import get_source

SYMBOLS = ["AAA", "BBB"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        options = {"access_key": "bench", "secret_key": "bench-secret", "endpoint_override": endpoint}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench-secret")
        s3.create_bucket(Bucket="bench")
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "bundles"
            meta = ingest_to_bundle("minutes", SYMBOLS, "2023-01-01", "2024-01-01", "1min",
                                    source=get_source("synthetic", seed=3), bundles_dir=root)
            t = time.perf_counter()
            manifest = push_bundle("minutes", "s3://bench/b", bundles_dir=root, storage_options=options)
            push_s = time.perf_counter() - t
            files = [root / "minutes" / f.path for f in manifest.files]  # the peer copies the same files
            size = sum(f.size for f in manifest.files)
            t = time.perf_counter()
            pull_bundle("s3://bench/b/minutes", bundles_dir=root, name="copy", storage_options=options)
            pull_s = time.perf_counter() - t
            t = time.perf_counter()
            src = RemoteBundleDataSource("s3://bench/b/minutes", options)
            rows = src.fetch_sync(SYMBOLS, "2023-01-01", "2024-01-01", "1min").height
            direct_s = time.perf_counter() - t
            src.close()

            t = time.perf_counter()
            for p in files:
                s3.upload_file(str(p), "bench", f"peer/{p.relative_to(root)}")
            peer_up = time.perf_counter() - t
            t = time.perf_counter()
            for p in files:
                s3.download_file("bench", f"peer/{p.relative_to(root)}", str(Path(tmp) / "peer.bin"))
            peer_down = time.perf_counter() - t

        mb = size / 1e6
        print(f"bundle: {len(SYMBOLS)} symbols, {meta.row_count:,} 1-min rows, {len(manifest.files)} files, "
              f"{mb:.1f} MB; direct read returned {rows:,} rows")
        print(f"{'operation':<34}{'backtape s':>12}{'boto3 peer s':>14}{'backtape MB/s':>15}")
        for label, ours, peer in (("push (upload + manifest)", push_s, peer_up),
                                  ("pull (download + verify + rename)", pull_s, peer_down),
                                  ("direct read (all symbols)", direct_s, peer_down)):
            print(f"{label:<34}{ours:>12.3f}{peer:>14.3f}{mb / ours:>15.1f}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
