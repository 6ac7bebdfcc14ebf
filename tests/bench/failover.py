"""Distributed mode measured: how long work takes to move, and how one pipeline scales.

Starts a Tansu broker and three `quiver server` workers (release) with one
group.id, creates one unthrottled datagen -> blackhole connector, then for each
trial SIGKILLs the worker running it and times how long until its task is RUNNING
on another worker (status read from a surviving worker), then starts a fresh
worker in the killed one's place and times how long it takes to join (its
/health turns 200). Prints median and worst; BENCHMARKS.md records them.

    tests/bench/run failover [--trials 10] [--session-timeout-ms 3000]

With --scale (tests/bench/run scale): one datagen -> blackhole connector of
--tasks tasks making --rows rows, run on a cluster of 1, 2 and 3 workers (a fresh
broker each time, --runs times); reports rows/s from the connector's creation to
every task done, and the CPU-seconds all workers used per million rows (from
/proc), since this machine's two cores cannot show more workers going faster.
Then, on two workers running an unbounded connector of --tasks tasks, starts a
third and times until one of the tasks is RUNNING on it (the rebalance).

    tests/bench/run scale [--rows 20000000 --tasks 6 --runs 3]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(url, data=None, method="GET"):
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return None, None


def cpu_seconds(pid):
    """User + system CPU a process used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cluster:
    """A Tansu broker and `quiver server` workers sharing one group.id."""

    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="quiver-bench-distributed-")
        kport = free_port()
        self.broker = subprocess.Popen([args.tansu, "broker", "--listener-url", f"tcp://127.0.0.1:{kport}",
                                        "--advertised-listener-url", f"tcp://127.0.0.1:{kport}",
                                        "--storage-engine", "memory://tansu/"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.props = os.path.join(self.dir, "worker.properties")
        with open(self.props, "w") as f:
            f.write(f"bootstrap.servers=127.0.0.1:{kport}\ngroup.id=bench\nconfig.storage.topic=bench-configs\n"
                    "offset.storage.topic=bench-offsets\nstatus.storage.topic=bench-status\n"
                    "config.storage.replication.factor=1\noffset.storage.replication.factor=1\n"
                    f"status.storage.replication.factor=1\nsession.timeout.ms={args.session_timeout_ms}\n")
        self.workers = {}
        time.sleep(1)

    def start(self):
        """Starts a worker; returns its URL and how long until it joined (/health 200)."""
        port = free_port()
        proc = subprocess.Popen([self.args.quiver, "server", "--listen", f"127.0.0.1:{port}", "--worker-config",
                                 self.props], stderr=subprocess.DEVNULL, env=dict(os.environ, QUIVER_LOG="error"))
        url = f"http://127.0.0.1:{port}"
        self.workers[f"127.0.0.1:{port}"] = (proc, url)
        t0 = time.monotonic()
        while call(url + "/health")[0] != 200:
            time.sleep(0.02)
        return url, time.monotonic() - t0

    def any_url(self):
        return next(iter(self.workers.values()))[1]

    def create(self, name, sql, tasks=1):
        while call(self.any_url() + "/connectors")[0] != 200:
            time.sleep(0.05)
        body = json.dumps({"name": name, "config": {"connector.class": "quiver", "tasks.max": str(tasks),
                                                    "quiver.sql": sql}}).encode()
        code, answer = call(self.any_url() + "/connectors", body, "POST")
        assert code == 201, (code, answer)

    def tasks(self, name):
        code, s = call(self.any_url() + f"/connectors/{name}/status")
        return s["tasks"] if code == 200 and s else []

    def close(self):
        for proc, _ in self.workers.values():
            proc.terminate()
        for proc, _ in self.workers.values():
            proc.wait()
        self.broker.terminate()
        self.broker.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


GENERATOR = ("CREATE SOURCE g (id BIGINT NOT NULL, name VARCHAR, score DOUBLE) WITH (connector = 'datagen', "
             "'fields.id.kind' = 'sequence', 'fields.name.length' = '24'{total});\n"
             "CREATE SINK s WITH (connector = 'blackhole') AS SELECT id, upper(name) AS name, score * 2 AS score FROM g "
             "WHERE score >= 0;")


def scale(args):
    results = {}
    for n in (1, 2, 3):
        for run in range(args.runs):
            cluster = Cluster(args)
            try:
                for _ in range(n):
                    cluster.start()
                t0 = time.monotonic()
                cluster.create("c", GENERATOR.format(total=f", 'rows.total' = '{args.rows}'"), args.tasks)
                while True:
                    tasks = cluster.tasks("c")
                    if len(tasks) == args.tasks and all(t["state"] == "STOPPED" for t in tasks):
                        break
                    time.sleep(0.05)
                took = time.monotonic() - t0
                cpu = sum(cpu_seconds(proc.pid) for proc, _ in cluster.workers.values())
                placed = sorted({t["worker_id"] for t in tasks})
            finally:
                cluster.close()
            results.setdefault(n, []).append((args.rows / took, cpu / (args.rows / 1e6)))
            print(f"{n} worker(s), run {run + 1}: {args.rows / took:,.0f} rows/s, {cpu / (args.rows / 1e6):.2f} "
                  f"CPU-s per 1M rows, tasks on {len(placed)} worker(s)", flush=True)
    joins = []
    for run in range(args.runs):
        cluster = Cluster(args)
        try:
            cluster.start()
            cluster.start()
            cluster.create("c", GENERATOR.format(total=", 'rows.per.second' = '100000'"), args.tasks)
            while not (len(cluster.tasks("c")) == args.tasks and all(t["state"] == "RUNNING" for t in cluster.tasks("c"))):
                time.sleep(0.05)
            time.sleep(2)
            t0 = time.monotonic()
            url, _ = cluster.start()
            me = url.removeprefix("http://")
            while not any(t["worker_id"] == me and t["state"] == "RUNNING" for t in cluster.tasks("c")):
                time.sleep(0.02)
            joins.append(time.monotonic() - t0)
            print(f"rebalance run {run + 1}: a task RUNNING on the new worker {joins[-1]:.2f} s after it started", flush=True)
        finally:
            cluster.close()
    print(f"\none datagen -> blackhole connector, tasks.max={args.tasks}, {args.rows:,} rows, {args.runs} runs (medians)\n")
    print("| workers | rows/s | CPU-s per 1M rows (all workers) | vs 1 worker |")
    print("|---|---|---|---|")
    base = statistics.median(r for r, _ in results[1])
    for n, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        print(f"| {n} | {rate:,.0f} | {statistics.median(c for _, c in runs):.2f} | {rate / base:.2f}x |")
    print(f"\n| a third worker started → a task RUNNING on it | median {statistics.median(joins):.2f} s | worst {max(joins):.2f} s |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quiver", required=True)
    p.add_argument("--tansu", required=True)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--session-timeout-ms", type=int, default=3000)
    p.add_argument("--scale", action="store_true")
    p.add_argument("--rows", type=int, default=20_000_000)
    p.add_argument("--tasks", type=int, default=6)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    if args.scale:
        return scale(args)

    cluster = Cluster(args)
    workers, start = cluster.workers, cluster.start
    try:
        for _ in range(3):
            start()
        any_url = next(iter(workers.values()))[1]
        while call(any_url + "/connectors")[0] != 200:
            time.sleep(0.05)
        sql = ("CREATE SOURCE g (id BIGINT NOT NULL) WITH (connector = 'datagen', 'fields.id.kind' = 'sequence');\n"
               "CREATE SINK s WITH (connector = 'blackhole') AS SELECT id FROM g;")
        body = json.dumps({"name": "c", "config": {"connector.class": "quiver", "quiver.sql": sql}}).encode()
        assert call(any_url + "/connectors", body, "POST")[0] == 201
        failovers, joins = [], []
        for trial in range(args.trials):
            # Who runs it now (asked of any worker; a standby forwards).
            while True:
                code, s = call(any_url + "/connectors/c/status")
                if code == 200 and s["tasks"] and s["tasks"][0]["state"] == "RUNNING":
                    holder = s["tasks"][0]["worker_id"]
                    break
                time.sleep(0.05)
            time.sleep(1)
            proc, _ = workers.pop(holder)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = time.monotonic()
            any_url = next(iter(workers.values()))[1]
            while True:
                code, s = call(any_url + "/connectors/c/status")
                if code == 200 and s["tasks"] and s["tasks"][0]["state"] == "RUNNING" and s["tasks"][0]["worker_id"] != holder:
                    break
                time.sleep(0.02)
            failovers.append(time.monotonic() - killed)
            joins.append(start()[1])
            print(f"trial {trial + 1}: failover {failovers[-1]:.2f} s, a new worker joined in {joins[-1]:.2f} s", flush=True)
        print(f"\n3 workers, session.timeout.ms={args.session_timeout_ms}, {args.trials} trials\n")
        print("| measure | median s | worst s |")
        print("|---|---|---|")
        print(f"| SIGKILL of the task's worker → task RUNNING on another worker | {statistics.median(failovers):.2f} | {max(failovers):.2f} |")
        print(f"| a new worker started → joined (/health 200) | {statistics.median(joins):.2f} | {max(joins):.2f} |")
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
