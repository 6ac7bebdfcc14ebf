"""Distributed mode: how long the cluster's work takes to move, measured.

Starts a Tansu broker and three `quiver server` workers (release) with one
group.id, creates one unthrottled datagen -> blackhole connector, then for each
trial SIGKILLs the worker running it and times how long until its task is RUNNING
on another worker (status read from a surviving worker), then starts a fresh
worker in the killed one's place and times how long it takes to join (its
/health turns 200). Prints median and worst; BENCHMARKS.md records them.

    tests/bench/run failover [--trials 10] [--session-timeout-ms 3000]
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quiver", required=True)
    p.add_argument("--tansu", required=True)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--session-timeout-ms", type=int, default=3000)
    args = p.parse_args()

    d = tempfile.mkdtemp(prefix="quiver-bench-failover-")
    kport = free_port()
    broker = subprocess.Popen([args.tansu, "broker", "--listener-url", f"tcp://127.0.0.1:{kport}",
                               "--advertised-listener-url", f"tcp://127.0.0.1:{kport}",
                               "--storage-engine", "memory://tansu/"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    props = os.path.join(d, "worker.properties")
    with open(props, "w") as f:
        f.write(f"bootstrap.servers=127.0.0.1:{kport}\ngroup.id=bench\nconfig.storage.topic=bench-configs\n"
                "offset.storage.topic=bench-offsets\nstatus.storage.topic=bench-status\n"
                "config.storage.replication.factor=1\noffset.storage.replication.factor=1\n"
                f"status.storage.replication.factor=1\nsession.timeout.ms={args.session_timeout_ms}\n")
    workers = {}

    def start():
        port = free_port()
        proc = subprocess.Popen([args.quiver, "server", "--listen", f"127.0.0.1:{port}", "--worker-config", props],
                                stderr=subprocess.DEVNULL, env=dict(os.environ, QUIVER_LOG="error"))
        url = f"http://127.0.0.1:{port}"
        workers[f"127.0.0.1:{port}"] = (proc, url)
        t0 = time.monotonic()
        while call(url + "/health")[0] != 200:
            time.sleep(0.02)
        return url, time.monotonic() - t0

    try:
        time.sleep(1)
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
        print(f"| SIGKILL of the holder → task RUNNING on another worker | {statistics.median(failovers):.2f} | {max(failovers):.2f} |")
        print(f"| a new worker started → joined (/health 200) | {statistics.median(joins):.2f} | {max(joins):.2f} |")
    finally:
        for proc, _ in workers.values():
            proc.terminate()
        for proc, _ in workers.values():
            proc.wait()
        broker.terminate()
        broker.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
