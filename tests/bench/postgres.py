"""Rows into PostgreSQL: Quiver's postgres sink beside `psql \\copy` of the same rows.

One CSV file of --rows rows (id, customer, country, amount, ts, note; ~90 B/row) is
loaded into fresh tables of the local server (database `test`):
  - psql \\copy FROM the CSV (the ceiling the issue names);
  - quiver file (CSV) -> postgres, insert.mode = insert (binary COPY);
  - quiver file (CSV) -> postgres, insert.mode = upsert into a table that already
    holds every row (staging table + INSERT ... ON CONFLICT DO UPDATE).
Reported: median wall time of --runs and rows/s; ratios as the issue states them.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench import measure  # noqa: E402

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-v", "ON_ERROR_STOP=1"]
COLUMNS = "id BIGINT PRIMARY KEY, customer TEXT, country TEXT, amount DOUBLE PRECISION, ts TIMESTAMP, note TEXT"


def make_csv(path, rows):
    rnd = random.Random(7)
    countries = ["DE", "FR", "US", "JP", "BR", "IN"]
    with open(path, "w") as f:
        f.write("id,customer,country,amount,ts,note\n")
        for i in range(rows):
            f.write(f"{i},customer-{rnd.randrange(100000)},{rnd.choice(countries)},{rnd.random() * 500:.2f},"
                    f"2026-11-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d},note {rnd.randrange(10**9)}\n")


def psql(sql):
    subprocess.run(PSQL + ["-c", sql], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiver", required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/quiver-bench")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    csv = os.path.join(args.workdir, f"rows-{args.rows}.csv")
    if not os.path.exists(csv):
        make_csv(csv, args.rows)
    mb = os.path.getsize(csv) / 1e6
    results = {}

    def quiver(table, mode):
        out = tempfile.mkdtemp(prefix="quiver-pgbench-")
        sql = os.path.join(out, "p.sql")
        with open(sql, "w") as f:
            f.write(
                "CREATE SOURCE rows (id BIGINT NOT NULL, customer TEXT, country TEXT, amount DOUBLE, ts TIMESTAMP, note TEXT) "
                f"WITH (connector = 'file', path = '{csv}', format = 'csv', batch.size = '65536');\n"
                f"CREATE SINK load WITH (connector = 'postgres', 'connection.url' = 'postgres://postgres@127.0.0.1:5432/test', "
                f"'table.name.format' = '{table}', 'insert.mode' = '{mode}', 'pk.mode' = 'record_value', 'pk.fields' = 'id', "
                "'batch.size' = '65536') AS SELECT * FROM rows;\n")
        cmd = [args.quiver, "run", sql, "--until-caught-up", "--state-dir", out + "/state"]
        wall, _cpu, _rss = measure(cmd, env=dict(os.environ, QUIVER_LOG="error"))
        shutil.rmtree(out)
        return wall

    def count(table):
        out = subprocess.run(PSQL + ["-t", "-A", "-c", f"SELECT count(*) FROM {table}"], check=True, capture_output=True, text=True)
        return int(out.stdout.strip())

    for i in range(args.runs):
        for name in ("copy", "ins", "ups"):
            psql(f"DROP TABLE IF EXISTS bench_{name}; CREATE TABLE bench_{name} ({COLUMNS})")
        start = time.monotonic()
        psql(f"\\copy bench_copy FROM '{csv}' CSV HEADER")
        results.setdefault("psql \\copy FROM csv", []).append(time.monotonic() - start)
        results.setdefault("quiver → postgres, insert (binary COPY)", []).append(quiver("bench_ins", "insert"))
        psql("INSERT INTO bench_ups SELECT * FROM bench_copy")
        results.setdefault("quiver → postgres, upsert over existing rows", []).append(quiver("bench_ups", "upsert"))
        for t in ("bench_copy", "bench_ins", "bench_ups"):
            assert count(t) == args.rows, f"{t} has {count(t)} rows"

    print(f"# {args.rows:,} rows ({mb:.0f} MB of CSV) into PostgreSQL 15 on 127.0.0.1; median of {args.runs}\n")
    print("| load | median wall s | rows/s | runs (s) |")
    print("|---|---|---|---|")
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in results.items():
        print(f"| {k} | {med[k]:.2f} | {args.rows / med[k]:,.0f} | {', '.join(f'{w:.2f}' for w in v)} |")
    copy = med["psql \\copy FROM csv"]
    ins = med["quiver → postgres, insert (binary COPY)"]
    ups = med["quiver → postgres, upsert over existing rows"]
    print(f"\n- append: quiver / psql \\copy = **{copy / ins:.2f}×** (target ≥ 0.8×)")
    print(f"- upsert over existing rows / append = **{ins / ups:.2f}×** (target ≥ 0.5×)")


if __name__ == "__main__":
    main()
