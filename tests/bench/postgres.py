"""Relational connectors beside the databases' own bulk tools, same rows, same run.

One CSV file of --rows rows (id, customer, country, amount, ts, note; ~90 B/row):
  pg:    into fresh tables of the local PostgreSQL (database `test`):
         psql \\copy FROM the CSV (the ceiling the issue names); quiver file (CSV) ->
         postgres, insert.mode = insert (binary COPY); quiver -> postgres, upsert into
         a table that already holds every row (staging table + ON CONFLICT DO UPDATE).
  maria: into fresh tables of the local MariaDB (database `test`): LOAD DATA LOCAL
         INFILE of the CSV; quiver file (CSV) -> mysql, insert (multi-row INSERT).
  read:  a PostgreSQL table of --rows rows of ~600 B -> Parquet (zstd) through the
         polling source in bulk mode, beside psql \\copy (SELECT ...) TO a CSV file.
Reported: median wall time of --runs, rows/s (MB/s for reads); ratios as the issue
states them. --only pg,maria,read picks sections.
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

MARIA = ["mariadb", "-h", "127.0.0.1", "-u", "root", "--local-infile=1", "test"]
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
    ap.add_argument("--only", default="pg,maria,read")
    args = ap.parse_args()
    only = set(args.only.split(","))
    os.makedirs(args.workdir, exist_ok=True)
    csv = os.path.join(args.workdir, f"rows-{args.rows}.csv")
    if not os.path.exists(csv):
        make_csv(csv, args.rows)
    mb = os.path.getsize(csv) / 1e6
    results = {}

    def run_sql(text):
        out = tempfile.mkdtemp(prefix="quiver-dbbench-")
        sql = os.path.join(out, "p.sql")
        with open(sql, "w") as f:
            f.write(text.replace("{out}", out))
        cmd = [args.quiver, "run", sql, "--until-caught-up", "--state-dir", out + "/state"]
        wall, _cpu, rss = measure(cmd, env=dict(os.environ, QUIVER_LOG="error"))
        shutil.rmtree(out)
        return wall, rss

    def quiver(table, mode, connector="postgres", url="postgres://postgres@127.0.0.1:5432/test"):
        return run_sql(
            "CREATE SOURCE rows (id BIGINT NOT NULL, customer TEXT, country TEXT, amount DOUBLE, ts TIMESTAMP, note TEXT) "
            f"WITH (connector = 'file', path = '{csv}', format = 'csv', batch.size = '65536');\n"
            f"CREATE SINK load WITH (connector = '{connector}', 'connection.url' = '{url}', "
            f"'table.name.format' = '{table}', 'insert.mode' = '{mode}', 'pk.mode' = 'record_value', 'pk.fields' = 'id', "
            "'batch.size' = '65536') AS SELECT * FROM rows;\n")[0]

    def maria(sql):
        subprocess.run(MARIA + ["-e", sql], check=True)

    def maria_count(table):
        out = subprocess.run(MARIA + ["-N", "-e", f"SELECT count(*) FROM {table}"], check=True, capture_output=True, text=True)
        return int(out.stdout.strip())

    def count(table):
        out = subprocess.run(PSQL + ["-t", "-A", "-c", f"SELECT count(*) FROM {table}"], check=True, capture_output=True, text=True)
        return int(out.stdout.strip())

    for i in range(args.runs if "pg" in only else 0):
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

    for i in range(args.runs if "maria" in only else 0):
        maria("DROP TABLE IF EXISTS bench_load, bench_qins; "
              "CREATE TABLE bench_load (id BIGINT PRIMARY KEY, customer TEXT, country TEXT, amount DOUBLE, ts DATETIME(6), note TEXT); "
              "CREATE TABLE bench_qins LIKE bench_load")
        start = time.monotonic()
        maria(f"LOAD DATA LOCAL INFILE '{csv}' INTO TABLE bench_load FIELDS TERMINATED BY ',' IGNORE 1 LINES")
        results.setdefault("mariadb LOAD DATA LOCAL INFILE", []).append(time.monotonic() - start)
        results.setdefault("quiver → mysql (MariaDB), insert (LOAD DATA LOCAL from the sink)", []).append(
            quiver("bench_qins", "insert", "mysql", "mysql://root@127.0.0.1:3306/test"))
        for t in ("bench_load", "bench_qins"):
            assert maria_count(t) == args.rows, f"{t} has {maria_count(t)} rows"

    read_mb = 0
    if "read" in only:
        # ~600 B rows: the CSV's columns plus two wide text columns.
        psql(f"DROP TABLE IF EXISTS bench_src; CREATE TABLE bench_src ({COLUMNS})")
        psql(f"\\copy bench_src FROM '{csv}' CSV HEADER")
        psql("DROP TABLE IF EXISTS bench_wide; CREATE TABLE bench_wide AS SELECT id, customer, country, amount, ts, note, "
             "repeat(md5(id::text), 8) AS body, md5(note) || repeat('x', 180) AS extra FROM bench_src; DROP TABLE bench_src")
        psql("VACUUM ANALYZE bench_wide")
        out = subprocess.run(PSQL + ["-t", "-A", "-c", "SELECT pg_table_size('bench_wide'), avg(pg_column_size(t.*))::int FROM bench_wide t"],
                             check=True, capture_output=True, text=True)
        size, row_bytes = (int(x) for x in out.stdout.strip().split("|"))
        read_mb = args.rows * row_bytes / 1e6
        for i in range(args.runs):
            dump = os.path.join(args.workdir, "wide.csv")
            start = time.monotonic()
            psql(f"\\copy (SELECT * FROM bench_wide) TO '{dump}' CSV")
            results.setdefault("psql \\copy (SELECT …) TO csv", []).append(time.monotonic() - start)
            os.remove(dump)
            wall, rss = run_sql(
                "CREATE SOURCE wide (id BIGINT NOT NULL, customer TEXT, country TEXT, amount DOUBLE, ts TIMESTAMP, note TEXT, body TEXT, extra TEXT) "
                "WITH (connector = 'postgres', 'connection.url' = 'postgres://postgres@127.0.0.1:5432/test', mode = 'bulk', "
                "'table.whitelist' = 'bench_wide', 'batch.max.rows' = '65536');\n"
                "CREATE SINK pq WITH (connector = 'filesystem', path = '{out}/pq', format = 'parquet') AS SELECT * FROM wide;\n")
            results.setdefault("quiver postgres (bulk) → Parquet zstd", []).append(wall)
            results.setdefault("_rss", []).append(rss)

    print(f"# {args.rows:,} rows ({mb:.0f} MB of CSV) into PostgreSQL 15 and MariaDB 10.11 on 127.0.0.1; median of {args.runs}\n")
    print("| load | median wall s | rows/s | MB/s | runs (s) |")
    print("|---|---|---|---|---|")
    rss = results.pop("_rss", [0])
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in results.items():
        size = read_mb if "→ Parquet" in k or "TO csv" in k else mb
        print(f"| {k} | {med[k]:.2f} | {args.rows / med[k]:,.0f} | {size / med[k]:.0f} | {', '.join(f'{w:.2f}' for w in v)} |")
    print()
    if "pg" in only:
        copy = med["psql \\copy FROM csv"]
        ins = med["quiver → postgres, insert (binary COPY)"]
        ups = med["quiver → postgres, upsert over existing rows"]
        print(f"- PostgreSQL append: quiver / psql \\copy = **{copy / ins:.2f}×** (target ≥ 0.8×)")
        print(f"- PostgreSQL upsert over existing rows / append = **{ins / ups:.2f}×** (target ≥ 0.5×)")
    if "maria" in only:
        load = med["mariadb LOAD DATA LOCAL INFILE"]
        qins = med["quiver → mysql (MariaDB), insert (LOAD DATA LOCAL from the sink)"]
        print(f"- MariaDB: quiver / LOAD DATA LOCAL INFILE = **{load / qins:.2f}×** (target ≥ 0.6×)")
    if "read" in only:
        dump = med["psql \\copy (SELECT …) TO csv"]
        pq = med["quiver postgres (bulk) → Parquet zstd"]
        print(f"- PostgreSQL → Parquet: {args.rows / pq:,.0f} rows/s, {read_mb / pq:.0f} MB/s of table rows (~{read_mb / args.rows * 1e6:.0f} B/row); "
              f"quiver / psql \\copy TO = {dump / pq:.2f}×; peak RSS {max(rss) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
