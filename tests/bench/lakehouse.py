"""Kafka -> Parquet on S3 (moto) and on local disk, beside the S3 server's own ceiling.

One Tansu broker and one moto S3 server, both pinned to CPU 1; the measured process is
unpinned unless noted. The topic holds --rows JSON records in one partition.
  - quiver kafka -> parquet, local disk: the lakehouse pipeline writing to a folder;
  - quiver kafka -> parquet, S3: the same pipeline writing s3://bench/... on moto;
  - ceiling: DuckDB writes the same records to one Parquet file (not timed), then boto3
    uploads that file to moto (timed): what the S3 server here accepts at best;
  - peak RSS of kafka -> parquet on S3 with 1, 10 and 200 open partitions
    (partition.by on id % N), default sink.memory.max.
Reported: median wall time of --runs, records/s, MB/s of input JSON, MB/s of Parquet
written, peak RSS (os.wait4).
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

KAFKA_PORT = 29192
S3_PORT = 29193
S3 = f"http://127.0.0.1:{S3_PORT}"
S3_OPTS = (f"'s3.endpoint' = '{S3}', 's3.region' = 'us-east-1', 's3.access.key.id' = 'bench', "
           "'s3.secret.access.key' = 'bench', 's3.allow.http' = 'true'")
PIPELINE = (
    "CREATE SOURCE events (id BIGINT NOT NULL, customer TEXT, email TEXT, country TEXT, amount DOUBLE, "
    "quantity INT, status TEXT, ts TIMESTAMP, note TEXT) WITH (connector = 'kafka', "
    "'bootstrap.servers' = '127.0.0.1:{kport}', topic = '{topic}', 'group.id' = 'bench-{run}', "
    "'scan.startup.mode' = 'earliest', batch.size = '16384');\n"
    "CREATE SINK out WITH (connector = 'filesystem', path = '{path}', format = 'parquet', {extra}"
    "'rollover.rows' = '100000000', 'rollover.bytes' = '100GB') AS "
    "SELECT id, customer, country, amount, ts, status{bucket} FROM events WHERE amount > 0;\n"
)


def s3_client():
    import boto3
    return boto3.client("s3", endpoint_url=S3, aws_access_key_id="bench", aws_secret_access_key="bench",
                        region_name="us-east-1")


def bucket_bytes(s3, bucket, prefix):
    total, n = 0, 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            total += o["Size"]
            n += 1
    return total, n


def main():
    args, inp, mb = kafka_bench_args(("--moto",))
    procs = [
        subprocess.Popen(["taskset", "-c", "1", args.tansu, "broker", "--listener-url", f"tcp://127.0.0.1:{KAFKA_PORT}",
                          "--advertised-listener-url", f"tcp://127.0.0.1:{KAFKA_PORT}", "--storage-engine", "memory://tansu/"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["taskset", "-c", "1", args.moto, "-H", "127.0.0.1", "-p", str(S3_PORT)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    results, rss_rows = [], []
    try:
        wait_port(KAFKA_PORT)
        wait_port(S3_PORT)
        s3 = s3_client()
        s3.create_bucket(Bucket="bench")
        topic = f"lake-{os.getpid()}"
        subprocess.run([args.tansu, "topic", "create", "--broker", f"tcp://127.0.0.1:{KAFKA_PORT}", "--partitions", "1", topic],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([args.kafka_bench, "produce", f"127.0.0.1:{KAFKA_PORT}", topic, inp], check=True)
        counter = [0]

        def quiver_cmd(path, extra="", bucket=""):
            counter[0] += 1
            out = tempfile.mkdtemp(prefix="quiver-lbench-")
            sql = os.path.join(out, "p.sql")
            target = path.format(out=out, run=counter[0])
            with open(sql, "w") as f:
                f.write(PIPELINE.format(kport=KAFKA_PORT, topic=topic, run=f"{os.getpid()}-{counter[0]}", path=target,
                                        extra=extra, bucket=bucket))
            return out, target, [args.quiver, "run", sql, "--until-caught-up", "--state-dir", out + "/state"]

        def run(name, path, extra=""):
            walls, written, rss = [], 0, 0
            for _ in range(args.runs):
                out, target, cmd = quiver_cmd(path, extra)
                wall, _cpu, peak = measure(cmd, env=dict(os.environ, QUIVER_LOG="error"))
                walls.append(wall)
                rss = max(rss, peak)
                if target.startswith("s3://"):
                    written = bucket_bytes(s3, "bench", target[len("s3://bench/"):])[0]
                else:
                    written = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(target) for f in fs)
                shutil.rmtree(out)
            results.append((name, statistics.median(walls), written, rss, walls))

        run("quiver kafka → parquet, local disk", "{out}/data")
        run("quiver kafka → parquet, S3 (moto)", "s3://bench/run-{run}", S3_OPTS + ", ")

        # The ceiling: the same records as one DuckDB-written Parquet file, uploaded by boto3.
        import duckdb
        pq = os.path.join(args.workdir, f"events-{args.rows}.parquet")
        con = duckdb.connect()
        con.execute(f"COPY (SELECT id, customer, country, amount, ts, status FROM read_json('{inp}') WHERE amount > 0) "
                    f"TO '{pq}' (FORMAT parquet, COMPRESSION zstd)")
        walls = []
        for i in range(args.runs):
            start = time.monotonic()
            s3.upload_file(pq, "bench", f"ceiling/{i}.parquet")
            walls.append(time.monotonic() - start)
        results.append(("boto3 upload of a DuckDB Parquet file (S3 ceiling)", statistics.median(walls), os.path.getsize(pq), 0, walls))

        for n in (1, 10, 200):
            out, _, cmd = quiver_cmd("s3://bench/rss-{run}", S3_OPTS + ", 'partition.by' = 'bucket', ", f", id % {n} AS bucket")
            wall, _cpu, peak = measure(cmd, env=dict(os.environ, QUIVER_LOG="error"))
            shutil.rmtree(out)
            rss_rows.append((n, wall, peak))
    finally:
        for p in procs:
            p.terminate()
            p.wait()

    print(f"# {args.rows:,} JSON records ({mb:.0f} MB) in one Kafka partition on Tansu; Tansu and moto pinned to "
          f"CPU 1; median of {args.runs}\n")
    print("| pipeline | median wall s | records/s | input MB/s | Parquet MB written | Parquet MB/s | peak RSS MiB | runs (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, wall, written, rss, walls in results:
        print(f"| {name} | {wall:.2f} | {args.rows / wall:,.0f} | {mb / wall:.0f} | {written / 1e6:.1f} | "
              f"{written / 1e6 / wall:.1f} | {rss / 2**20:.0f} | {', '.join(f'{w:.2f}' for w in walls)} |")
    by = {r[0]: r[1] for r in results}
    s3_wall = by["quiver kafka → parquet, S3 (moto)"]
    print(f"\n- S3 vs local disk: {by['quiver kafka → parquet, local disk'] / s3_wall:.2f}× the local throughput")
    print(f"- S3 pipeline wall time vs the bare upload of the finished file: {s3_wall / by['boto3 upload of a DuckDB Parquet file (S3 ceiling)']:.1f}×")
    print("\n| open partitions (kafka → parquet on S3) | wall s | peak RSS MiB |")
    print("|---|---|---|")
    for n, wall, peak in rss_rows:
        print(f"| {n} | {wall:.2f} | {peak / 2**20:.0f} |")


if __name__ == "__main__":
    main()
