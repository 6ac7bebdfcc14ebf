"""Latency of the REST API under load while pipelines run flat out, over HTTP and HTTPS.

One `quiver server` (release) runs 10 connectors, each an unthrottled datagen ->
filter + project -> blackhole pipeline. For each round the script measures the
pipelines' throughput (records/s from /metrics' poll totals over --window seconds)
without API load, then again while ApacheBench (`ab`, Debian's apache2-utils) sends
`GET /connectors/c0/status` and `GET /connectors?expand=status` with 64 concurrent
clients, and reads ab's latency percentiles. HTTPS uses a certificate made with
openssl for the run. Prints a Markdown table; BENCHMARKS.md records it.

    tests/bench/run api [--rounds 3] [--window 5] [--concurrency 64] [--requests 20000]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
import ssl

POLL = "kafka_connect_source_task_metrics_source_record_poll_total"


def opener(ca):
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    return lambda url, data=None, method="GET": urllib.request.urlopen(
        urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"}),
        context=ctx,
    )


def polled(open_url, base):
    with open_url(base + "/metrics") as r:
        text = r.read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines() if line.startswith(POLL))


def rate(open_url, base, window):
    a, t0 = polled(open_url, base), time.monotonic()
    time.sleep(window)
    b, t1 = polled(open_url, base), time.monotonic()
    return (b - a) / (t1 - t0)


def ab(url, concurrency, requests):
    out = subprocess.run(["ab", "-q", "-k", "-c", str(concurrency), "-n", str(requests), url],
                         capture_output=True, text=True, check=True).stdout
    pct = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"^\s+(\d+)%\s+(\d+)", out, re.M)}
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    return pct, rps, failed + (int(non2xx.group(1)) if non2xx else 0)


def make_cert(d):
    run = lambda *a: subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1")
    with open(os.path.join(d, "keystore.pem"), "w") as f:
        f.write(open(os.path.join(d, "key.pem")).read() + open(os.path.join(d, "cert.pem")).read())
    return os.path.join(d, "cert.pem")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quiver", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--window", type=float, default=5)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--connectors", type=int, default=10)
    args = p.parse_args()

    d = tempfile.mkdtemp(prefix="quiver-bench-api-")
    cert = make_cert(d)
    with open(os.path.join(d, "worker.properties"), "w") as f:
        f.write(f"listeners=http://127.0.0.1:28083,https://127.0.0.1:28443\n"
                f"ssl.keystore.type=PEM\nssl.keystore.location={d}/keystore.pem\n")
    proc = subprocess.Popen([args.quiver, "server", "--state-dir", d + "/state", "--worker-config", d + "/worker.properties"],
                            stderr=subprocess.DEVNULL, env=dict(os.environ, QUIVER_LOG="error"))
    http, https = "http://127.0.0.1:28083", "https://127.0.0.1:28443"
    plain = opener(None)
    try:
        for _ in range(100):
            try:
                plain(http + "/health").read()
                break
            except OSError:
                time.sleep(0.1)
        for i in range(args.connectors):
            sql = ("CREATE SOURCE g (id BIGINT NOT NULL, v DOUBLE) WITH (connector = 'datagen', "
                   "'fields.id.kind' = 'sequence');\n"
                   "CREATE SINK s WITH (connector = 'blackhole') AS SELECT id, v * 2 AS w FROM g WHERE v > 0.1;")
            body = json.dumps({"name": f"c{i}", "config": {"connector.class": "quiver", "quiver.sql": sql}}).encode()
            plain(http + "/connectors", body, "POST").read()
        time.sleep(3)
        rows = {("http", "status"): [], ("http", "expand"): [], ("https", "status"): [], ("https", "expand"): []}
        for _ in range(args.rounds):
            for scheme, base in (("http", http), ("https", https)):
                for what, path in (("status", "/connectors/c0/status"), ("expand", "/connectors?expand=status")):
                    quiet = rate(plain, http, args.window)
                    result = {}
                    t = threading.Thread(target=lambda: result.update(zip(("pct", "rps", "bad"),
                                                                              ab(base + path, args.concurrency, args.requests))))
                    t.start()
                    time.sleep(0.5)
                    loaded = rate(plain, http, 1.0)
                    t.join()
                    rows[(scheme, what)].append((quiet, loaded, result))
        print(f"\n{args.connectors} unthrottled datagen -> blackhole connectors; ab -c {args.concurrency} -n {args.requests} -k; "
              f"{args.rounds} rounds, medians\n")
        print("| listener | request | p50 ms | p99 ms | requests/s | failed | pipelines quiet (rec/s) | under load (rec/s) | ratio |")
        print("|---|---|---|---|---|---|---|---|---|")
        for (scheme, what), rs in rows.items():
            med = lambda f: statistics.median(f(r) for r in rs)
            quiet, loaded = med(lambda r: r[0]), med(lambda r: r[1])
            path = "GET /connectors/c0/status" if what == "status" else "GET /connectors?expand=status"
            print(f"| {scheme} | `{path}` | {med(lambda r: r[2]['pct'][50]):.0f} | {med(lambda r: r[2]['pct'][99]):.0f} | "
                  f"{med(lambda r: r[2]['rps']):,.0f} | {sum(r[2]['bad'] for r in rs)} | {quiet:,.0f} | {loaded:,.0f} | "
                  f"{loaded / quiet:.2f} |")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
