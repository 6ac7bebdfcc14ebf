"""PostgreSQL change data capture beside pg_recvlogical: same WAL, same run.

Throughput: one table gets --changes row changes (half inserts in 1 000-row
transactions, then as many updates, also in 1 000-row transactions) after one
pgoutput slot per reader and run was created, so every reader reads exactly the
same WAL:
  pg_recvlogical   the slot's pgoutput stream to /dev/null (the ceiling: no decoding);
  quiver blackhole postgres-cdc → blackhole (decode into Arrow, then discard);
  quiver debezium  postgres-cdc with envelope = 'debezium' → blackhole (each change
                   serialized as Debezium's JSON change event, schema included, as
                   Debezium's connector writes it with JsonConverter);
  quiver parquet   postgres-cdc → Parquet (zstd) files.
Each reads to the WAL's end as of its start (pg_recvlogical --endpos; quiver
--until-caught-up). Reported: median wall time of --runs, changes/s, ratio to
pg_recvlogical, CPU seconds.

Lag: pgbench inserts --lag-rate changes/s (100-row transactions) for --lag-seconds
while a postgres-cdc → PostgreSQL pipeline copies them into a table whose
`arrived` column defaults to clock_timestamp(); lag is arrived − the change's
commit time (_commit_ts), from the commit in the source to the row in the target.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench import measure  # noqa: E402

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-v", "ON_ERROR_STOP=1"]
CONN = ("'database.hostname' = '127.0.0.1', 'database.dbname' = 'test', 'database.sslmode' = 'disable', "
        "'publication.autocreate.mode' = 'disabled', 'snapshot.mode' = 'never'")


def psql(sql):
    subprocess.run(PSQL + ["-c", sql], check=True)


def scalar(sql):
    out = subprocess.run(PSQL + ["-t", "-A", "-c", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def drop_slots(prefix):
    psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE '{prefix}%'")


def throughput(args, workdir):
    drop_slots("bench_cdc_")
    psql("DROP TABLE IF EXISTS bench_cdc; DROP PUBLICATION IF EXISTS bench_cdc_pub")
    psql("CREATE TABLE bench_cdc (id BIGINT PRIMARY KEY, customer TEXT, amount NUMERIC(10,2), ts TIMESTAMPTZ)")
    psql("CREATE PUBLICATION bench_cdc_pub FOR TABLE bench_cdc")
    readers = ["pg_recvlogical", "quiver blackhole", "quiver debezium", "quiver parquet"]
    free = int(scalar("SELECT current_setting('max_replication_slots')::int - count(*) FROM pg_replication_slots"))
    runs = min(args.runs, free // len(readers))
    if runs < 1:
        raise SystemExit(f"only {free} free replication slots; drop unused ones (pg_replication_slots)")
    slots = {(r, i): f"bench_cdc_{r.split()[-1]}_{i}" for r in readers for i in range(runs)}
    for slot in slots.values():
        psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    half = args.changes // 2
    batches = half // 1000
    t0 = time.monotonic()
    psql(f"""DO $$ BEGIN FOR b IN 0..{batches - 1} LOOP
               INSERT INTO bench_cdc SELECT i, 'customer-' || (i % 100000), (i % 50000) / 100.0, now()
                 FROM generate_series(b * 1000, b * 1000 + 999) i;
               COMMIT; END LOOP; END $$""")
    psql(f"""DO $$ BEGIN FOR b IN 0..{batches - 1} LOOP
               UPDATE bench_cdc SET amount = amount + 1 WHERE id BETWEEN b * 1000 AND b * 1000 + 999;
               COMMIT; END LOOP; END $$""")
    changes = batches * 1000 * 2
    endpos = scalar("SELECT pg_current_wal_lsn()")
    wal = int(scalar(f"SELECT pg_wal_lsn_diff('{endpos}', confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = '{slots[(readers[0], 0)]}'"))
    print(f"generated {changes} changes ({wal / 1e6:.0f} MB of WAL) in {time.monotonic() - t0:.1f} s", file=sys.stderr)

    def quiver_cmd(slot, sink, out, events=False):
        sql = os.path.join(workdir, f"{slot}.sql")
        columns, envelope, select = ("(id BIGINT, customer TEXT, amount DECIMAL(10,2), ts TIMESTAMPTZ)", "", "*")
        if events:
            columns, envelope, select = "", "envelope = 'debezium', 'topic.prefix' = 'bench',", "_value AS value, _key, _topic"
        with open(sql, "w") as f:
            f.write(f"""CREATE SOURCE cdc {columns}
                      WITH (connector = 'postgres-cdc', {CONN}, {envelope} 'slot.name' = '{slot}', 'publication.name' = 'bench_cdc_pub', 'batch.size' = '8192');
                      CREATE SINK s WITH ({sink.format(out=out)}) AS SELECT {select} FROM cdc;""")
        state = tempfile.mkdtemp(prefix="quiver-bench-state-", dir=workdir)
        return [args.quiver, "run", sql, "--until-caught-up", "--state-dir", state]

    results = {r: [] for r in readers}
    parquet_rows = None
    for i in range(runs):
        for r in readers:
            slot = slots[(r, i)]
            out = tempfile.mkdtemp(prefix="quiver-bench-out-", dir=workdir)
            if r == "pg_recvlogical":
                cmd = ["pg_recvlogical", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-S", slot, "--start",
                       "-o", "proto_version=1", "-o", "publication_names=bench_cdc_pub", "-E", endpos,
                       "-f", "/dev/null", "--no-loop"]
            elif r == "quiver blackhole":
                cmd = quiver_cmd(slot, "connector = 'blackhole'", out)
            elif r == "quiver debezium":
                cmd = quiver_cmd(slot, "connector = 'blackhole'", out, events=True)
            else:
                cmd = quiver_cmd(slot, "connector = 'filesystem', path = '{out}', format = 'parquet'", out)
            results[r].append(measure(cmd))
            if r == "quiver parquet" and parquet_rows is None:
                import pyarrow.parquet as pq
                parquet_rows = sum(pq.read_metadata(os.path.join(d, f)).num_rows
                                   for d, _, fs in os.walk(out) for f in fs if f.endswith(".parquet"))
            shutil.rmtree(out)
    drop_slots("bench_cdc_")
    psql("DROP TABLE IF EXISTS bench_cdc; DROP PUBLICATION IF EXISTS bench_cdc_pub")
    if parquet_rows != changes:
        raise SystemExit(f"the Parquet files hold {parquet_rows} rows, not {changes}")
    base = statistics.median(w for w, _, _ in results["pg_recvlogical"])
    print(f"\n### {changes:,} row changes ({wal / 1e6:.0f} MB of WAL), median of {runs} runs\n")
    print("| reader | wall (s) | changes/s | vs pg_recvlogical | CPU (s) | peak RSS (MB) | runs (s) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in readers:
        walls = [w for w, _, _ in results[r]]
        wall = statistics.median(walls)
        cpu = statistics.median(c for _, c, _ in results[r])
        rss = max(m for _, _, m in results[r])
        print(f"| {r} | {wall:.2f} | {changes / wall:,.0f} | {base / wall:.2f}x | {cpu:.2f} | {rss / 1e6:.0f} | "
              + ", ".join(f"{w:.2f}" for w in walls) + " |")


def lag(args, workdir):
    drop_slots("bench_lag")
    psql("DROP TABLE IF EXISTS bench_lag, bench_lag_copy; DROP PUBLICATION IF EXISTS bench_lag_pub")
    psql("CREATE TABLE bench_lag (id BIGSERIAL PRIMARY KEY, v INT)")
    psql("CREATE TABLE bench_lag_copy (id BIGINT, committed TIMESTAMPTZ, arrived TIMESTAMPTZ DEFAULT clock_timestamp())")
    psql("CREATE PUBLICATION bench_lag_pub FOR TABLE bench_lag")
    psql("SELECT pg_create_logical_replication_slot('bench_lag', 'pgoutput')")
    sql = os.path.join(workdir, "lag.sql")
    with open(sql, "w") as f:
        f.write(f"""CREATE SOURCE cdc (id BIGINT, v INT)
                  WITH (connector = 'postgres-cdc', {CONN}, 'slot.name' = 'bench_lag', 'publication.name' = 'bench_lag_pub', 'batch.linger' = '50ms');
                  CREATE SINK bench_lag_copy WITH (connector = 'postgres', 'connection.url' = 'postgres://postgres@127.0.0.1:5432/test')
                  AS SELECT id, _commit_ts AS committed FROM cdc;""")
    state = tempfile.mkdtemp(prefix="quiver-bench-state-", dir=workdir)
    pipeline = subprocess.Popen([args.quiver, "run", sql, "--state-dir", state],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(2)
    script = os.path.join(workdir, "lag-insert.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO bench_lag (v) SELECT generate_series(1, 100);\n")
    tps = args.lag_rate // 100
    subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-f", script, "-R", str(tps),
                    "-T", str(args.lag_seconds), "-c", "2", "-j", "2", "test"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    written = int(scalar("SELECT count(*) FROM bench_lag"))
    deadline = time.monotonic() + 60
    while int(scalar("SELECT count(*) FROM bench_lag_copy")) < written and time.monotonic() < deadline:
        time.sleep(0.5)
    pipeline.terminate()
    pipeline.wait()
    stats = scalar("""SELECT count(*) || ' ' || percentile_cont(0.5) WITHIN GROUP (ORDER BY l) || ' ' ||
                             percentile_cont(0.99) WITHIN GROUP (ORDER BY l) || ' ' || max(l)
                      FROM (SELECT extract(epoch FROM arrived - committed) AS l FROM bench_lag_copy) x""")
    n, p50, p99, worst = stats.split()
    drop_slots("bench_lag")
    psql("DROP TABLE IF EXISTS bench_lag, bench_lag_copy; DROP PUBLICATION IF EXISTS bench_lag_pub")
    print(f"\n### End-to-end lag at {args.lag_rate:,} changes/s for {args.lag_seconds} s "
          f"(commit in the source → row in the target, postgres-cdc → postgres)\n")
    print("| changes written | copied | p50 (ms) | p99 (ms) | max (ms) |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {written:,} | {int(n):,} | {float(p50) * 1000:.0f} | {float(p99) * 1000:.0f} | {float(worst) * 1000:.0f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiver", required=True)
    ap.add_argument("--changes", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lag-rate", type=int, default=20_000)
    ap.add_argument("--lag-seconds", type=int, default=20)
    ap.add_argument("--only", default="throughput,lag")
    ap.add_argument("--workdir", default="/tmp/quiver-bench-cdc")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    only = set(args.only.split(","))
    if scalar("SHOW wal_level") != "logical":
        raise SystemExit("wal_level is not logical; tests/run sets it (see ../shared/SERVICES.md)")
    if "throughput" in only:
        throughput(args, args.workdir)
    if "lag" in only:
        lag(args, args.workdir)


if __name__ == "__main__":
    main()
