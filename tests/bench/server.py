"""Resident memory of one `quiver server`: idle, then with 1, 10 and 100 running
connectors (each a rate-limited datagen -> blackhole pipeline submitted over the
REST API). Prints a Markdown table; BENCHMARKS.md records it with the command.

    tests/bench/run server [--rate 100] [--settle 5] [--runs 3]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def request(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return r.status, r.read()


def connector(i, rate):
    return {
        "name": f"c{i}",
        "config": {
            "connector.class": "quiver",
            "quiver.sql": (
                f"CREATE SOURCE g (id BIGINT NOT NULL, v DOUBLE) WITH (connector = 'datagen', "
                f"'rows.per.second' = '{rate}', 'fields.id.kind' = 'sequence');"
                f"CREATE SINK s WITH (connector = 'blackhole') AS SELECT id, v * 2 AS v2 FROM g;"
            ),
        },
    }


def one_run(quiver, rate, settle, steps):
    state = tempfile.mkdtemp(prefix="quiver-bench-server-")
    proc = subprocess.Popen(
        [quiver, "server", "--listen", "127.0.0.1:0", "--state-dir", state],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        base = None
        for line in proc.stderr:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                base = m.group(1)
                break
        assert base, "the server did not start"
        time.sleep(settle)
        out = {0: rss_kib(proc.pid)}
        made = 0
        for n in steps:
            while made < n:
                status, _ = request(base, "POST", "/connectors", connector(made, rate))
                assert status == 201
                made += 1
            time.sleep(settle)
            _, body = request(base, "GET", "/connectors?expand=status")
            running = sum(1 for v in json.loads(body).values() if v["status"]["tasks"][0]["state"] == "RUNNING")
            assert running == n, f"{running} of {n} running"
            out[n] = rss_kib(proc.pid)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiver", required=True)
    ap.add_argument("--rate", type=int, default=100, help="rows per second per connector")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds before each reading")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    steps = [1, 10, 100]
    runs = [one_run(args.quiver, args.rate, args.settle, steps) for _ in range(args.runs)]
    print(f"quiver server RSS, {args.runs} runs, datagen {args.rate} rows/s per connector -> blackhole, "
          f"read {args.settle}s after each step (median, MiB)\n")
    print("| connectors | RSS (MiB) | runs (MiB) | per connector after the first (MiB) |")
    print("|---|---|---|---|")
    one = statistics.median(r[1] for r in runs) / 1024
    for n in [0] + steps:
        med = statistics.median(r[n] for r in runs) / 1024
        each = " / ".join(f"{r[n] / 1024:.1f}" for r in runs)
        per = f"{(med - one) / (n - 1):.3f}" if n > 1 else ""
        print(f"| {n} | {med:.1f} | {each} | {per} |")


if __name__ == "__main__":
    main()
