"""Kafka -> filter + project -> Parquet zstd, beside a bare rdkafka consumer and file -> Parquet.

One Tansu broker (in-memory storage) pinned to CPU 1 holds one single-partition topic of
--rows JSON records. Every measured process is pinned to CPU 0:
  - drain:  a bare rdkafka consumer (tests/bin/kafka_bench.rs) reading the topic to its end;
  - quiver kafka -> parquet: the same filter + project as the foundation benchmark;
  - quiver file -> parquet: the foundation benchmark's pipeline on the same records.
Reported: median wall time of --runs, records/s, MB/s, CPU seconds per million records
and peak RSS (os.wait4).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench import kafka_bench_args, measure, wait_port  # noqa: E402

PORT = 29092
PIPELINE = (
    "CREATE SOURCE events (id BIGINT NOT NULL, customer TEXT, email TEXT, country TEXT, amount DOUBLE, "
    "quantity INT, status TEXT, ts TIMESTAMP, note TEXT) WITH ({source}, batch.size = '16384');\n"
    "CREATE SINK out WITH (connector = 'filesystem', path = '{out}', format = 'parquet', "
    "'rollover.rows' = '100000000', 'rollover.bytes' = '100GB') AS "
    "SELECT id, customer, country, amount, ts, status FROM events WHERE amount > 0;\n"
)


def main():
    args, inp, mb = kafka_bench_args()
    bootstrap = f"127.0.0.1:{PORT}"
    broker = subprocess.Popen(
        ["taskset", "-c", "1", args.tansu, "broker", "--listener-url", f"tcp://{bootstrap}",
         "--advertised-listener-url", f"tcp://{bootstrap}", "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(PORT)
        topic = f"bench-{os.getpid()}"
        subprocess.run([args.tansu, "topic", "create", "--broker", f"tcp://{bootstrap}", "--partitions", "1", topic],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([args.kafka_bench, "produce", bootstrap, topic, inp], check=True)
        results = []

        def run(name, build, one_core=True):
            walls, cpus, rss = [], [], 0
            for i in range(args.runs):
                out = tempfile.mkdtemp(prefix="quiver-kbench-")
                cmd, env = build(out, i + (0 if one_core else 100))
                wall, cpu, peak = measure(cmd, env=dict(os.environ, **env), one_core=one_core)
                walls.append(wall)
                cpus.append(cpu)
                rss = max(rss, peak)
                shutil.rmtree(out)
            results.append((name, statistics.median(walls), statistics.median(cpus), rss, walls))

        def quiver(source):
            def build(out, i):
                sql = os.path.join(out, "p.sql")
                with open(sql, "w") as f:
                    f.write(PIPELINE.format(source=source.format(run=f"{os.getpid()}-{i}"), out=out + "/data"))
                return [args.quiver, "run", sql, "--until-caught-up", "--state-dir", out + "/state"], {"QUIVER_LOG": "error"}
            return build

        drain = lambda out, i: ([args.kafka_bench, "drain", bootstrap, topic, str(args.rows)], {})
        kafka = quiver(f"connector = 'kafka', 'bootstrap.servers' = '{bootstrap}', topic = '{topic}', "
                       "'group.id' = 'bench-{run}', 'scan.startup.mode' = 'earliest'")
        file = quiver(f"connector = 'file', path = '{inp}', format = 'json'")
        run("bare rdkafka consumer (drain), 1 core", drain)
        run("quiver kafka → parquet, 1 core", kafka)
        run("quiver file → parquet, 1 core", file)
        # Unpinned: the process may use both cores (the broker is still pinned to CPU 1).
        run("bare rdkafka consumer (drain), 2 cores", drain, one_core=False)
        run("quiver kafka → parquet, 2 cores", kafka, one_core=False)
        run("quiver file → parquet, 2 cores", file, one_core=False)
    finally:
        broker.terminate()
        broker.wait()

    print(f"# {args.rows:,} JSON records ({mb:.0f} MB, {mb * 1e6 / args.rows:.0f} B/record), one partition on Tansu "
          f"(pinned to CPU 1); median of {args.runs}\n")
    print("| pipeline | median wall s | records/s | MB/s | CPU s per 1M records | peak RSS MiB | runs (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, wall, cpu, rss, walls in results:
        print(f"| {name} | {wall:.2f} | {args.rows / wall:,.0f} | {mb / wall:.0f} | {cpu / args.rows * 1e6:.2f} | "
              f"{rss / 2**20:.0f} | {', '.join(f'{w:.2f}' for w in walls)} |")
    by = {r[0]: r[1] for r in results}
    print()
    for cores in ("1 core", "2 cores"):
        floor = max(by[f"bare rdkafka consumer (drain), {cores}"], by[f"quiver file → parquet, {cores}"])
        print(f"- {cores}: quiver kafka → parquet vs the lower of (drain, file → parquet): "
              f"**{floor / by[f'quiver kafka → parquet, {cores}']:.2f}×** (target ≥ 0.8×)")


if __name__ == "__main__":
    main()
