"""Throughput of one Kafka -> Parquet connector in `quiver server` with tasks.max 1 and 2.

One Tansu broker (in-memory storage) holds a --partitions topic of --rows JSON records
(the foundation benchmark's events, spread over the partitions by librdkafka's
partitioner). For each tasks.max and run, a fresh `quiver server` gets the connector
over the REST API (the foundation benchmark's filter + project, Parquet zstd); the
script polls /metrics every 20 ms and measures from the first record read to the last:
records/s, and CPU-seconds of the server process per million records (from
/proc/<pid>/stat). The connector is created PAUSED (`initial_state`) and resumed once
every task's consumer has its partitions, so the consumer group's joins and
rebalances are left out of the timing: this is steady-state throughput. Nothing
is pinned: the tasks, the broker and this script share the machine's cores, as they
would in production. Prints a Markdown table; BENCHMARKS.md records it.

    tests/bench/run tasks [--rows 1000000] [--runs 3] [--partitions 2] [--tasks 1,2]
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from bench import kafka_bench_args, wait_port  # noqa: E402

PORT = 29094
TICK = os.sysconf("SC_CLK_TCK")
POLL = "kafka_connect_source_task_metrics_source_record_poll_total"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; after the ')' they are 12th and 13th.
    return (int(fields[11]) + int(fields[12])) / TICK


def read_total(base, name):
    with urllib.request.urlopen(base + "/metrics") as r:
        text = r.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith(POLL) and f'connector="{name}"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def post(base, body):
    req = urllib.request.Request(base + "/connectors", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 201, r.status


def wait_assigned(base, name, tasks):
    """Waits until each of the connector's tasks reads at least one partition."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/connectors/{name}/status") as r:
            status = json.loads(r.read())
        got = status.get("tasks", [])
        if len(got) == tasks and all(t.get("partitions") for t in got):
            return
        time.sleep(0.1)
    raise SystemExit(f"tasks.max={tasks}: the tasks never all had partitions: {status}")


def resume(base, name):
    req = urllib.request.Request(f"{base}/connectors/{name}/resume", method="PUT")
    with urllib.request.urlopen(req) as r:
        assert r.status == 202, r.status


def one_run(args, bootstrap, topic, tasks, run):
    state = tempfile.mkdtemp(prefix="quiver-bench-tasks-")
    proc = subprocess.Popen([args.quiver, "server", "--listen", "127.0.0.1:0", "--state-dir", state + "/state",
                             "--bootstrap-servers", bootstrap],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, QUIVER_LOG="warn"))
    try:
        base = None
        for line in proc.stderr:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                base = m.group(1)
                break
        # Keep draining stderr so the server never blocks on a full pipe.
        subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)
        sql = (
            "CREATE SOURCE events (id BIGINT NOT NULL, customer TEXT, email TEXT, country TEXT, amount DOUBLE, "
            f"quantity INT, status TEXT, ts TIMESTAMP, note TEXT) WITH (connector = 'kafka', topic = '{topic}', "
            f"'group.id' = 'bench-tasks-{os.getpid()}-{tasks}-{run}', 'scan.startup.mode' = 'earliest', "
            "format = 'json', batch.size = '16384');\n"
            f"CREATE SINK out WITH (connector = 'filesystem', path = '{state}/data', format = 'parquet', "
            "'rollover.rows' = '250000') AS "
            "SELECT id, customer, country, amount, ts, status FROM events WHERE amount > 0;"
        )
        post(base, {"name": "k2p", "initial_state": "PAUSED",
                    "config": {"connector.class": "quiver", "tasks.max": str(tasks), "quiver.sql": sql}})
        wait_assigned(base, "k2p", tasks)
        resume(base, "k2p")
        deadline = time.monotonic() + 300
        first = None
        while True:
            n = read_total(base, "k2p")
            now = time.monotonic()
            if n > 0 and first is None:
                first = (now, cpu_seconds(proc.pid), n)
            if n >= args.rows:
                last = (now, cpu_seconds(proc.pid), n)
                break
            if now > deadline:
                raise SystemExit(f"tasks.max={tasks}: only {n} of {args.rows} records read in 300 s")
            time.sleep(0.02)
        wall = last[0] - first[0]
        cpu = last[1] - first[1]
        records = last[2] - first[2]
        return records / wall, cpu / (records / 1e6)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(state, ignore_errors=True)


def main():
    extra = []
    argv = sys.argv[1:]
    opts = {"--partitions": "2", "--tasks": "1,2"}
    for k in list(opts):
        if k in argv:
            i = argv.index(k)
            opts[k] = argv[i + 1]
            del argv[i:i + 2]
    sys.argv = [sys.argv[0]] + argv
    args, inp, mb = kafka_bench_args(extra)
    partitions = int(opts["--partitions"])
    counts = [int(t) for t in opts["--tasks"].split(",")]
    bootstrap = f"127.0.0.1:{PORT}"
    broker = subprocess.Popen(
        [args.tansu, "broker", "--listener-url", f"tcp://{bootstrap}", "--advertised-listener-url",
         f"tcp://{bootstrap}", "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(PORT)
        topic = f"bench-tasks-{os.getpid()}"
        subprocess.run([args.tansu, "topic", "create", "--broker", f"tcp://{bootstrap}", "--partitions",
                        str(partitions), topic], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([args.kafka_bench, "produce", bootstrap, topic, inp], check=True)
        results = {t: [] for t in counts}
        # Interleaved: tasks 1, 2, 1, 2, … so drift on a noisy machine hits both alike.
        for run in range(args.runs):
            for t in counts:
                results[t].append(one_run(args, bootstrap, topic, t, run))
        print(f"\n{args.rows} records ({mb:.0f} MB JSON) over {partitions} partitions, {args.runs} runs, "
              "medians; nothing pinned (2 cores shared with the broker)\n")
        print("| tasks.max | records/s | CPU-s per 1M records | runs (records/s) |")
        print("|---|---|---|---|")
        base = None
        for t in counts:
            rate = statistics.median(r[0] for r in results[t])
            cpu = statistics.median(r[1] for r in results[t])
            base = base or rate
            runs = ", ".join(f"{r[0]:,.0f}" for r in results[t])
            print(f"| {t} | {rate:,.0f} ({rate / base:.2f}x) | {cpu:.2f} | {runs} |")
    finally:
        broker.terminate()


if __name__ == "__main__":
    main()
