#!/usr/bin/env python3
"""Runs fibra's comparison programs against Go, tokio and may and writes a table.

Called by benches/compare.sh after it has built everything; see there for the
options. For every row (question) and every repetition it runs the fibra
program first and then each peer in turn (fibra, go, tokio, may, fibra, go,
...), so that a slow phase of a shared machine hits both sides of a pair. It
reports the median of each runtime and the median of the per-repetition
ratios fibra/peer.
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(HERE, "target", "release")
GO_BIN = os.path.join(HERE, "target", "compare-go")
LOGS = os.path.join(HERE, "target", "logs")
RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)

# Each row: the question, its parameters in full and quick mode, the
# runtimes that answer it, the metrics it reports (with the direction that
# is better and fibra's target for it), and how it is run:
#   kind "plain": each program prints its RESULT lines;
#   kind "echo":  a server per runtime, the shared echo_client as the load;
#   kind "http":  a server per runtime, wrk as the load.
ROWS = [
    dict(id="spawn_join", title="spawn + join, {n_h} tasks",
         full=dict(n=1_000_000), quick=dict(n=100_000),
         # may maps a stack per spawn, ~30 s for 1M: one run is enough.
         peer_reps={"may": 1},
         peers=["go", "tokio", "may"],
         metrics={"time": ("lower", {"go": "<= 0.5"})}),
    dict(id="yield", title="yield switch, 2 tasks on 1 worker",
         full=dict(n=2_000_000), quick=dict(n=500_000), reps_quick=3,
         peers=["go", "tokio", "may"],
         metrics={"time": ("lower", {"go": "<= 0.3", "may": "<= 0.8"})}),
    dict(id="chan_pingpong", title="unbuffered channel round trip, 1 worker", name="chan_pingpong_1w",
         full=dict(n=1_000_000, workers=1), quick=dict(n=200_000, workers=1),
         peers=["go", "tokio", "may"], feature="chan",
         metrics={"time": ("lower", {"go": "<= 0.5"})}),
    dict(id="chan_pingpong", title="unbuffered channel round trip, 2 workers", name="chan_pingpong_2w",
         full=dict(n=1_000_000, workers=2), quick=dict(n=200_000, workers=2),
         peers=["go", "tokio", "may"], feature="chan",
         metrics={"time": ("lower", {"go": "<= 0.5"})}),
    dict(id="chan_buffered", title="buffered channel (cap 1024) 1P1C, 1 worker", name="chan_buffered_1w",
         full=dict(n=5_000_000, workers=1), quick=dict(n=1_000_000, workers=1),
         peers=["go", "tokio", "may"], feature="chan",
         metrics={"time": ("lower", {"go": "<= 0.6"})}),
    dict(id="chan_buffered", title="buffered channel (cap 1024) 1P1C, 2 workers", name="chan_buffered_2w",
         full=dict(n=5_000_000, workers=2), quick=dict(n=1_000_000, workers=2),
         peers=["go", "tokio", "may"], feature="chan",
         metrics={"time": ("lower", {"go": "<= 0.6"})}),
    dict(id="thread_ring", title="thread-ring, 503 green threads, token over unbuffered channels, 2 workers",
         name="thread_ring_2w",
         full=dict(n=2_000_000, workers=2), quick=dict(n=500_000, workers=2),
         peers=["go"], feature="chan",
         metrics={"time": ("lower", {"go": "<= 1.0"})}),
    dict(id="pingpong_pairs", title="{tasks} ping-pong pairs at once, 2 workers", name="pingpong_pairs_2w",
         full=dict(n=2_000_000, tasks=16, workers=2), quick=dict(n=500_000, tasks=16, workers=2),
         peers=["go"], feature="chan",
         metrics={"time": ("lower", {"go": "<= 0.8"})}),
    dict(id="mutex", title="contended mutex, {tasks} tasks",
         full=dict(n=2_000_000, tasks=16), quick=dict(n=500_000, tasks=16),
         peers=["go", "tokio", "may"], feature="sync",
         metrics={"time": ("lower", {})}),
    dict(id="sleep", title="sleep(1ms) lateness, {tasks_h} sleepers", name="sleep_1ms",
         full=dict(tasks=10_000, rounds=5), quick=dict(tasks=10_000, rounds=2),
         peers=["go", "tokio", "may"], feature="time",
         metrics={"p50_late": ("lower", {}), "p99_late": ("lower", {})}),
    dict(id="parked_memory", title="memory per parked task, {n_h} tasks",
         full=dict(n=100_000), quick=dict(n=100_000), reps_full=2, reps_quick=1,
         peers=["go", "tokio", "may"],
         metrics={"rss": ("lower", {"*": "<= 4813 B"})}),
    dict(id="park_wake", title="{n_h} green threads parked on one channel: start until all parked, close + join all",
         name_fmt="park_wake_{n}", full=dict(n=100_000, rounds=1), quick=dict(n=100_000, rounds=1),
         peers=["go"], feature="sync",
         metrics={"start": ("lower", {"go": "<= 1.0"}), "wake_join": ("lower", {"go": "<= 1.0"})}),
    dict(id="park_wake", title="{n_h} green threads parked on one channel: start until all parked, close + join all",
         name_fmt="park_wake_{n}", full=dict(n=1_000_000, rounds=1), quick=dict(n=1_000_000, rounds=1),
         reps_full=2, reps_quick=1, peers=["go"], feature="sync",
         metrics={"start": ("lower", {"go": "<= 1.0"}), "wake_join": ("lower", {"go": "<= 1.0"})}),
    dict(id="echo", title="TCP echo, 64 connections", name="tcp_echo", kind="echo",
         full=dict(secs=3), quick=dict(secs=1),
         peers=["go", "tokio", "may"], feature="net",
         metrics={"throughput": ("higher", {"tokio": ">= 1.1", "go": ">= 1.2"})}),
    dict(id="http", title="HTTP plaintext, wrk -c64", name="http_plaintext", kind="http",
         full=dict(secs=3), quick=dict(secs=1),
         peers=["go", "tokio", "may"], feature="net",
         metrics={"throughput": ("higher", {"tokio": ">= 1.0", "go": ">= 1.75"})}),
    dict(id="binary_trees", title="binary-trees depth {depth}, sequential", name_fmt="binary_trees_{depth}",
         full=dict(depth=21), quick=dict(depth=16), reps_full=1, reps_quick=1,
         # Go takes 45-120 s at depth 21 here; the Box reference runs in quick mode only.
         peers=["go"], quick_peers=["rust-box"], feature="gc",
         metrics={"time": ("lower", {"go": "<= 0.8"}), "peak_rss": ("lower", {"go": "<= 1.5"})}),
    dict(id="gc_latency", title="gc-latency ({window_h} x 1 KiB window, {n_h} pushes)",
         full=dict(window=200_000, n=1_000_000), quick=dict(window=200_000, n=1_000_000),
         reps_full=3, reps_quick=1, peers=["go", "rust-box"], feature="gc",
         metrics={"worst_push": ("lower", {"*": "<= 1 ms", "go": "< 1"})}),
    dict(id="gc_pause", title="GC pauses, {live_mb} MiB live, {tasks_h} parked tasks, a spinning task",
         full=dict(live_mb=256, tasks=10_000, secs=3), quick=dict(live_mb=64, tasks=10_000, secs=2),
         reps_full=2, reps_quick=1, peers=["go"], feature="gc",
         metrics={"p50": ("lower", {"*": "<= 20 us"}), "p99": ("lower", {"*": "< 50 us"}),
                  "max": ("lower", {"*": "< 100 us"}), "count": ("info", {})}),
]

PEER_LABEL = {
    "fibra": "fibra", "go": "Go", "tokio": "tokio", "may": "may", "rust-box": "Rust Box",
}
# fibra features whose programs fail to build for another reason than a
# missing API (set from --broken).
BROKEN = set()
HTTP_LABEL = {"tokio": "hyper (tokio)", "may": "may_minihttp", "go": "Go net/http", "fibra": "fibra"}


def human(v):
    """1000000 -> 1M, 100000 -> 100k."""
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if v >= div and v % div == 0:
            return f"{v // div}{suffix}"
    return str(v)


def row_title(row, params):
    extra = {f"{k}_h": human(v) for k, v in params.items() if isinstance(v, int)}
    return row["title"].format(**params, **extra)


def row_name(row, params):
    if "name_fmt" in row:
        return row["name_fmt"].format(**params)
    return row.get("name", row["id"])


def rust_bin(question, runtime):
    suffix = "box" if runtime == "rust-box" else runtime
    return os.path.join(BIN, f"{question}_{suffix}")


def program(row, runtime):
    """The server or program binary of `runtime` for `row`, or None if absent."""
    q = row["id"]
    if row.get("kind") == "echo":
        q = "echo_server"
    elif row.get("kind") == "http":
        q = "http_server"
    if runtime == "go":
        return [GO_BIN, f"-q={q}"] if os.path.exists(GO_BIN) else None
    path = rust_bin(q, runtime)
    return [path] if os.path.exists(path) else None


def flags(params):
    return [f"-{k}={v}" for k, v in params.items()]


def parse_results(text):
    out = {}
    for m in RESULT_RE.finditer(text):
        fields = dict(kv.split("=", 1) for kv in m.group(1).split())
        out[fields["metric"]] = (float(fields["value"]), fields["unit"])
    return out


def log(name, text):
    os.makedirs(LOGS, exist_ok=True)
    with open(os.path.join(LOGS, name), "a") as f:
        f.write(text)


def run_plain(cmd, timeout, logname):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(logname, f"$ {' '.join(cmd)}\nTIMEOUT after {timeout}s\n")
        return None, "timeout"
    log(logname, f"$ {' '.join(cmd)}\n{p.stdout}{p.stderr}\n")
    if p.returncode != 0:
        return None, f"exit {p.returncode}"
    res = parse_results(p.stdout)
    return (res, None) if res else (None, "no RESULT line")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_server(cmd, logname, load):
    """Starts a server, waits until it accepts connections, runs `load(addr)`."""
    addr = f"127.0.0.1:{free_port()}"
    logf = open(os.path.join(LOGS, logname), "a")
    logf.write(f"$ {' '.join(cmd)} -addr={addr}\n")
    logf.flush()
    server = subprocess.Popen(cmd + [f"-addr={addr}"], stdout=logf, stderr=logf,
                              start_new_session=True)
    try:
        host, port = addr.split(":")
        deadline = time.time() + 10
        while True:
            if server.poll() is not None:
                return None, f"server exit {server.returncode}"
            try:
                socket.create_connection((host, int(port)), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    return None, "server did not listen"
                time.sleep(0.05)
        return load(addr)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        logf.close()


def run_echo(cmd, runtime, params, logname):
    client = [os.path.join(BIN, "echo_client"), f"-secs={params['secs']}", "-conns=64",
              "-size=64", f"-runtime={runtime}"]

    def load(addr):
        return run_plain(client + [f"-addr={addr}"], params["secs"] + 30, logname)

    return with_server(cmd, logname, load)


def run_http(cmd, runtime, params, logname):
    def load(addr):
        wrk = ["wrk", "-t1", "-c64", f"-d{params['secs']}s", f"http://{addr}/"]
        try:
            p = subprocess.run(wrk, capture_output=True, text=True, timeout=params["secs"] + 30)
        except subprocess.TimeoutExpired:
            return None, "wrk timeout"
        log(logname, f"$ {' '.join(wrk)}\n{p.stdout}{p.stderr}\n")
        m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
        if p.returncode != 0 or not m:
            return None, "wrk failed"
        if "Non-2xx" in p.stdout or "Socket errors" in p.stdout:
            return None, "wrk saw errors"
        return {"throughput": (float(m.group(1)), "req/s")}, None

    return with_server(cmd, logname, load)


def run_one(row, runtime, params):
    cmd = program(row, runtime)
    if cmd is None:
        return None, "missing"
    logname = f"{row_name(row, params)}.log"
    kind = row.get("kind", "plain")
    if kind == "echo":
        return run_echo(cmd, runtime, params, logname)
    if kind == "http":
        return run_http(cmd, runtime, params, logname)
    return run_plain(cmd + flags(params), 600, logname)


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def peers_of(row, mode):
    return row["peers"] + (row.get("quick_peers", []) if mode == "quick" else [])


def measure(row, mode, reps_override):
    params = row[mode]
    reps = reps_override or row.get(f"reps_{mode}", 2 if mode == "quick" else 3)
    runtimes = ["fibra"] + peers_of(row, mode)
    values = {rt: {} for rt in runtimes}  # runtime -> metric -> [value per rep or None]
    status = {}
    units = {}
    if row.get("feature") in BROKEN:
        status["fibra"] = "build error"
    for rep in range(reps):
        for rt in runtimes:
            if status.get(rt) in ("missing", "build error"):
                continue
            if rep >= row.get("peer_reps", {}).get(rt, reps):
                continue
            res, err = run_one(row, rt, params)
            if err:
                status[rt] = err
                for metric in row["metrics"]:
                    values[rt].setdefault(metric, []).append(None)
                continue
            for metric, (v, unit) in res.items():
                units[metric] = unit
                values[rt].setdefault(metric, []).append(v)
    return params, reps, values, status, units, peers_of(row, mode)


def median(vs):
    vs = [v for v in vs if v is not None]
    return statistics.median(vs) if vs else None


def summarize(row, params, reps, values, status, units, peers):
    """Table lines for one row: one per (metric, peer)."""
    lines = []
    name = row_name(row, params)
    for metric, (better, targets) in row["metrics"].items():
        unit = units.get(metric, "")
        fibra_vals = values["fibra"].get(metric, [])
        fibra_med = median(fibra_vals)
        if status.get("fibra") in ("missing", "build error"):
            fibra_cell = status["fibra"]
        elif fibra_med is None:
            fibra_cell = f"error ({status.get('fibra', '?')})"
        else:
            fibra_cell = fmt(fibra_med)
        for peer in peers:
            peer_vals = values[peer].get(metric, [])
            peer_med = median(peer_vals)
            label = HTTP_LABEL.get(peer, peer) if row.get("kind") == "http" else PEER_LABEL[peer]
            peer_cell = fmt(peer_med) if peer_med is not None else \
                ("missing" if status.get(peer) == "missing" else f"error ({status.get(peer, '?')})")
            ratios = [f / p for f, p in zip(fibra_vals, peer_vals)
                      if f is not None and p is not None and p != 0]
            ratio = median(ratios)
            ratio_cell = f"{ratio:.2f}×" if ratio is not None and better != "info" else "—"
            target = targets.get(peer) or targets.get("*") or ""
            if target and peer in targets and "*" in targets:
                target = f"{targets['*']}; ratio {targets[peer]}"
            lines.append(dict(title=row_title(row, params), name=name, metric=metric, unit=unit,
                              better=better, fibra=fibra_cell, peer=label, peer_value=peer_cell,
                              ratio=ratio_cell, target=target,
                              reps=len([v for v in peer_vals if v is not None]) or reps))
    return lines


def tool_version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except Exception:
        return "unknown"


def lock_versions():
    versions = {}
    lock = os.path.join(HERE, "Cargo.lock")
    if os.path.exists(lock):
        text = open(lock).read()
        for crate in ["tokio", "may", "may_minihttp", "hyper", "corosensei", "crossbeam-deque"]:
            m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(crate), text)
            if m:
                versions[crate] = m.group(1)
    return versions


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(mode, features):
    commit = tool_version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain"], capture_output=True,
                           text=True).stdout.strip()
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cpu=cpu_model(), cores=os.cpu_count(),
        load=" ".join(open("/proc/loadavg").read().split()[:3]),
        kernel=platform.release(),
        go=tool_version([os.environ.get("GO", "go"), "version"]),
        rustc=tool_version(["rustc", "--version"]),
        wrk=" ".join(tool_version(["wrk", "--version"]).split()[:2]) if shutil.which("wrk")
        else "wrk not installed",
        crates=lock_versions(), fibra=commit + ("+dirty" if dirty else ""), mode=mode,
        features=features,
        max_map_count=open("/proc/sys/vm/max_map_count").read().strip(),
    )


def markdown(info, lines, elapsed):
    crates = ", ".join(f"{k} {v}" for k, v in info["crates"].items())
    out = [
        "# fibra side by side with Go, tokio and may",
        "",
        f"Generated by `benches/compare.sh{' --quick' if info['mode'] == 'quick' else ''}` "
        f"on {info['date']} in {elapsed:.0f} s.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
        f"load average at start {info['load']}, at end {info['load_end']} (a shared machine "
        "inflates absolute figures; the interleaved ratios are steadier), "
        f"vm.max_map_count {info['max_map_count']}",
        f"- fibra {info['fibra']}; {info['rustc']}; {info['go']}; {info['wrk']}",
        f"- Crates: {crates}",
        f"- fibra programs behind a feature that built: {info['features'] or 'none'} "
        "(of chan, sync, time, net, gc; the rows of the others show \"missing\")",
        "",
        "Each row runs fibra first and then each peer, repeated `reps` times "
        "(fibra, Go, tokio, may, fibra, Go, ...). Values are medians; the ratio is the "
        "median of the per-repetition ratios fibra/peer (below 1 is better for times and "
        "memory, above 1 for throughput). \"missing\": fibra does not have the API yet.",
        "",
        "| question | metric | unit | fibra | peer | peer value | fibra/peer | target | reps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    last = None
    for ln in lines:
        q = f"{ln['title']} (`{ln['name']}`)" if (ln["title"], ln["name"]) != last else ""
        last = (ln["title"], ln["name"])
        better = {"lower": "↓", "higher": "↑"}.get(ln["better"], "")
        out.append(f"| {q} | {ln['metric']} {better} | {ln['unit']} | {ln['fibra']} | {ln['peer']} | "
                   f"{ln['peer_value']} | {ln['ratio']} | {ln['target']} | {ln['reps']} |")
    out += [
        "",
        "Notes: tokio has no rendezvous channel, its ping-pong uses `mpsc::channel(1)`; may has "
        "only unbounded channels, so its buffered row never blocks the producer. The echo load "
        "is one shared client (`echo_client`, tokio current_thread, 64 connections x 64 B); "
        "HTTP load is `wrk -t1 -c64`. Client and server share the machine's cores. "
        "Go pauses come from `/sched/pauses/total/gc:seconds` (bucket midpoints); fibra's from "
        "its `gc pause` tracing events. Logs of every run: `benches/compare/target/logs/`.",
        "",
    ]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated row ids")
    ap.add_argument("--features", default="", help="fibra features that built")
    ap.add_argument("--broken", default="", help="fibra features that fail to build")
    ap.add_argument("--out", default=os.path.join(ROOT, "benches", "RESULTS.md"))
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    BROKEN.update(args.broken.split())
    only = set(filter(None, args.only.split(",")))
    os.makedirs(LOGS, exist_ok=True)
    for old in os.listdir(LOGS):  # last run's logs; the build logs stay
        if not old.startswith("build-"):
            os.remove(os.path.join(LOGS, old))
    info = machine_info(mode, args.features)
    start = time.time()
    lines = []
    header = f"{'question':<34} {'metric':<11} {'fibra':>10} {'peer':<14} {'peer value':>12} {'fibra/peer':>10}"
    print(header)
    print("-" * len(header))
    for row in ROWS:
        if only and row["id"] not in only:
            continue
        t0 = time.time()
        params, reps, values, status, units, peers = measure(row, mode, args.reps)
        row_lines = summarize(row, params, reps, values, status, units, peers)
        for ln in row_lines:
            print(f"{ln['name']:<34} {ln['metric']:<11} {ln['fibra']:>10} {ln['peer']:<14} "
                  f"{ln['peer_value']:>12} {ln['ratio']:>10}  {ln['unit']}", flush=True)
        print(f"  ({time.time() - t0:.0f} s)", flush=True)
        lines += row_lines
    elapsed = time.time() - start
    info["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    with open(args.out, "w") as f:
        f.write(markdown(info, lines, elapsed))
    print(f"\nwrote {os.path.relpath(args.out, ROOT)} ({elapsed:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
