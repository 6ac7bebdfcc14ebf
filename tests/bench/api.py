"""Latency of the REST API under load while pipelines run flat out, over HTTP and HTTPS.

One `quiver server` (release) runs 10 connectors, each an unthrottled datagen ->
filter + project -> blackhole pipeline. For each round the script measures the
pipelines' throughput (records/s from /metrics' poll totals over --window seconds)
without API load, then again while ApacheBench (`ab`, Debian's apache2-utils) sends
`GET /connectors/c0/status` and `GET /connectors?expand=status` with 64 concurrent
clients, and reads ab's latency percentiles. HTTPS uses a certificate made with
openssl for the run. Prints a Markdown table; BENCHMARKS.md records it.

    tests/bench/run api [--rounds 3] [--window 5] [--concurrency 64] [--requests 20000] [--rate 640]

With --rate, 64 keep-alive clients on one asyncio loop send that many requests/s
in all, evenly paced (64 dashboards or scripts polling), instead of ab's flood; the
API thread's own CPU is read from /proc for both.
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


def paced(url, concurrency, rate, seconds, ca):
    """`concurrency` keep-alive clients sending `rate` requests/s in all, evenly
    paced, on one asyncio loop (the load generator must cost the pipelines as
    little CPU as it can); returns the latency percentiles (ms), the rate reached
    and failures."""
    import asyncio
    import urllib.parse
    u = urllib.parse.urlparse(url)
    ctx = ssl.create_default_context(cafile=ca) if u.scheme == "https" else None
    target = u.path + (("?" + u.query) if u.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {u.hostname}\r\n\r\n".encode()
    interval = concurrency / rate

    async def one(reader, writer):
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        return status == 200

    async def client(i, start, latencies, bad):
        reader, writer = await asyncio.open_connection(u.hostname, u.port, ssl=ctx)
        await one(reader, writer)  # untimed: the connection (and TLS) set up first
        n = 0
        loop = asyncio.get_running_loop()
        while True:
            due = start + (i / concurrency) * interval + n * interval
            if due > start + seconds:
                break
            await asyncio.sleep(max(0, due - loop.time()))
            t0 = time.perf_counter()
            try:
                ok = await one(reader, writer)
            except (OSError, asyncio.IncompleteReadError):
                ok = False
            latencies.append((time.perf_counter() - t0) * 1000)
            bad[0] += 0 if ok else 1
            n += 1
        writer.close()

    async def run():
        latencies, bad = [], [0]
        start = asyncio.get_running_loop().time() + 0.5
        await asyncio.gather(*(client(i, start, latencies, bad) for i in range(concurrency)))
        return latencies, bad[0]

    latencies, bad = asyncio.run(run())
    latencies.sort()
    pct = {q: latencies[min(len(latencies) - 1, int(len(latencies) * q / 100))] for q in (50, 99)}
    return pct, len(latencies) / seconds, bad


def oha(oha_bin, url, concurrency, rate, seconds):
    """`concurrency` keep-alive clients sending `rate` requests/s in all, paced by
    oha (Rust, tokio): a generator that costs the pipelines far less CPU than
    Python's. Returns the latency percentiles (ms), the rate reached, failures,
    and oha's own CPU seconds."""
    import resource
    before = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
    out = subprocess.run([oha_bin, "--no-tui", "--output-format", "json", "--insecure", "-z", f"{seconds}s",
                          "-c", str(concurrency), "-q", str(rate), url],
                         capture_output=True, text=True, check=True).stdout
    cpu = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]) - before
    report = json.loads(out)
    pct = report.get("latencyPercentiles", {})
    ms = lambda k: 1000 * float(pct.get(k) or 0)
    codes = report.get("statusCodeDistribution", {})
    bad = sum(int(n) for c, n in codes.items() if c != "200") + sum(int(n) for n in report.get("errorDistribution", {}).values())
    return {50: ms("p50"), 99: ms("p99")}, float(report["summary"]["requestsPerSec"]), bad, cpu


def api_cpu_seconds(pid):
    """CPU seconds the server's API thread (named quiver-api) has used."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            if open(f"/proc/{pid}/task/{tid}/comm").read().strip() != "quiver-api":
                continue
            fields = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def make_cert(d):
    run = lambda *a: subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1")
    with open(os.path.join(d, "keystore.pem"), "w") as f:
        f.write(open(os.path.join(d, "key.pem")).read() + open(os.path.join(d, "cert.pem")).read())
    return os.path.join(d, "cert.pem")


def oha_round(args, pid, plain, http, url):
    """One measure with oha: the pipelines' rate over a quiet window, then over an
    equally long window while oha runs (it starts a second before the window and
    ends after it), then quiet again; the quiet rate is the mean of the two."""
    before = rate(plain, http, args.window)
    result = {}
    t = threading.Thread(target=lambda: result.update(
        zip(("pct", "rps", "bad", "gen_cpu_s"), oha(args.oha, url, args.concurrency, args.rate, args.window + 2)))
    )
    t.start()
    time.sleep(1)
    cpu0, w0 = api_cpu_seconds(pid), time.monotonic()
    loaded = rate(plain, http, args.window)
    took = time.monotonic() - w0
    result["api_cpu"] = (api_cpu_seconds(pid) - cpu0) / took
    t.join()
    result["gen_cpu"] = result["gen_cpu_s"] / (args.window + 2)
    after = rate(plain, http, args.window)
    return ((before + after) / 2, loaded, result)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quiver", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--window", type=float, default=5)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--requests", type=int, default=100000)
    p.add_argument("--connectors", type=int, default=10)
    p.add_argument("--rate", type=float, default=0,
                   help="pace the clients at this many requests/s in all (Python clients) instead of ab's flood")
    p.add_argument("--oha", default=None,
                   help="with --rate: pace the clients with this oha binary instead of the Python clients, and measure "
                        "quiet and loaded throughput over equal windows")
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
                    if args.oha and args.rate:
                        rows[(scheme, what)].append(oha_round(args, proc.pid, plain, http, base + path))
                        continue
                    quiet = rate(plain, http, args.window)
                    result = {}
                    load = ((lambda: paced(base + path, args.concurrency, args.rate, 4.0, cert)) if args.rate
                            else (lambda: ab(base + path, args.concurrency, args.requests)))
                    t = threading.Thread(target=lambda: result.update(zip(("pct", "rps", "bad"), load())))
                    t.start()
                    time.sleep(0.5)
                    import resource
                    own = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
                    cpu0, gen0, w0 = api_cpu_seconds(proc.pid), own(), time.monotonic()
                    loaded = rate(plain, http, 1.0)
                    took = time.monotonic() - w0
                    result["api_cpu"] = (api_cpu_seconds(proc.pid) - cpu0) / took
                    # The paced clients run in this process (ab's CPU is not read).
                    result["gen_cpu"] = (own() - gen0) / took if args.rate else None
                    t.join()
                    rows[(scheme, what)].append((quiet, loaded, result))
        how = (f"oha -c {args.concurrency} -q {args.rate:.0f}: keep-alive clients paced at {args.rate:.0f} requests/s in all" if args.oha and args.rate
               else f"{args.concurrency} keep-alive clients (asyncio) paced at {args.rate:.0f} requests/s in all" if args.rate
               else f"ab -c {args.concurrency} -n {args.requests} -k")
        print(f"\n{args.connectors} unthrottled datagen -> blackhole connectors; {how}; {args.rounds} rounds, medians\n")
        print("| listener | request | p50 ms | p99 ms | requests/s | failed | API thread (cores) | load generator (cores) | pipelines quiet (rec/s) | under load (rec/s) | ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for (scheme, what), rs in rows.items():
            med = lambda f: statistics.median(f(r) for r in rs)
            quiet, loaded = med(lambda r: r[0]), med(lambda r: r[1])
            path = "GET /connectors/c0/status" if what == "status" else "GET /connectors?expand=status"
            print(f"| {scheme} | `{path}` | {med(lambda r: r[2]['pct'][50]):.0f} | {med(lambda r: r[2]['pct'][99]):.0f} | "
                  f"{med(lambda r: r[2]['rps']):,.0f} | {sum(r[2]['bad'] for r in rs)} | {med(lambda r: r[2]['api_cpu']):.2f} | "
                  f"{'–' if not args.rate else format(med(lambda r: r[2]['gen_cpu']), '.2f')} | "
                  f"{quiet:,.0f} | {loaded:,.0f} | "
                  f"{loaded / quiet:.2f} |")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
