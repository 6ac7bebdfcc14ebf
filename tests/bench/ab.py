"""Interleaved A/B of Quiver builds (and DuckDB) on the benchmark's JSON -> Parquet pipeline.

    python3 tests/bench/ab.py ROUNDS INPUT name=BINARY[|extra sink options] ... [duckdb]
    WHERE="country = 'DE'" python3 tests/bench/ab.py 7 /tmp/quiver-bench/events-1000000.jsonl \
        before=/tmp/quiver-before after=target/release/quiver

Every contender runs once per round, pinned to CPU 0; prints each one's median and the
median of per-round ratios against the first. INPUT comes from bench.make_input; the
peers' venv is .venv-bench (tests/bench/run makes it). For comparing two builds of one
change; the figures BENCHMARKS.md quotes against the peers come from tests/bench/run.
The duckdb contender always runs the benchmark's own WHERE amount > 0.
"""
import os, sys, subprocess, tempfile, time, statistics, shutil
rounds = int(sys.argv[1]); inp = sys.argv[2]
specs = sys.argv[3:]
SRC = """CREATE SOURCE events (id BIGINT NOT NULL, customer TEXT, email TEXT, country TEXT, amount DOUBLE,
    quantity INT, status TEXT, ts TIMESTAMP, note TEXT)
WITH (connector = 'file', path = '{input}', format = 'json', batch.size = '16384');
CREATE SINK out WITH (connector = 'filesystem', path = '{out}', format = 'parquet', 'rollover.rows' = '100000000', 'rollover.bytes' = '100GB'{extra}) AS SELECT id, customer, country, amount, ts, status FROM events WHERE {where};
"""
DUCK = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET threads=1")
con.execute(f\"\"\"COPY (SELECT id, customer, country, amount, ts, status FROM read_json('{sys.argv[1]}', format='newline_delimited',
    columns={{'id':'BIGINT','customer':'VARCHAR','email':'VARCHAR','country':'VARCHAR','amount':'DOUBLE','quantity':'INTEGER','status':'VARCHAR','ts':'TIMESTAMP','note':'VARCHAR'}})
    WHERE amount > 0) TO '{sys.argv[2]}/out.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)\"\"\")
"""
py = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".venv-bench", "bin", "python")
def run(spec):
    d = tempfile.mkdtemp(dir="/tmp")
    try:
        if spec == "duckdb":
            cmd = ["taskset", "-c", "0", py, "-c", DUCK, inp, d]
        else:
            name, rest = spec.split("=", 1)
            binp, _, extra = rest.partition("|")
            sql = os.path.join(d, "p.sql")
            os.makedirs(os.path.join(d, "out"))
            open(sql, "w").write(SRC.format(input=inp, out=os.path.join(d, "out"), extra=(", " + extra) if extra else "", where=os.environ.get("WHERE", "amount > 0")))
            cmd = ["taskset", "-c", "0", binp, "run", sql, "--until-caught-up", "--state-dir", os.path.join(d, "state")]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, QUIVER_LOG="error"))
        return time.perf_counter() - t
    finally:
        shutil.rmtree(d)
names = [s.split("=")[0] for s in specs]
times = {n: [] for n in names}
for r in range(rounds):
    for n, s in zip(names, specs):
        times[n].append(run(s))
for n in names:
    print(f"{n}: median {statistics.median(times[n]):.3f}s  runs {' '.join(f'{x:.2f}' for x in times[n])}")
b = names[0]
for n in names[1:]:
    ratios = [times[b][i] / times[n][i] for i in range(rounds)]
    print(f"{b}/{n} per-round median ratio {statistics.median(ratios):.3f}")
