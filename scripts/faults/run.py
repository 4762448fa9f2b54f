#!/usr/bin/env python3
"""Remesa's fault suite: each scenario runs a node through the chat and the HTTP API while a fault is injected,
then checks that no money was lost or doubled. Writes RELIABILITY.md (full run) or prints (``--smoke``, in CI).

    scripts/faults.sh                          the full run (about 35 minutes on 2 cores), rewrites RELIABILITY.md
    scripts/faults.sh --smoke                  small sizes, part of scripts/test.sh
    scripts/faults.sh --only crash-sqlite,rpc-outage --seed 7 --keep    some scenarios, one seed, data kept

Every scenario prints its seed; ``--only <scenario> --seed <seed>`` replays it (thread scheduling and block timing
are not seeded: a replay is close, not bit-exact). Exit status: 0 when every scenario passed, 1 otherwise, 130 on
Ctrl-C. The harness (``harness.py``) never builds the node: ``target/debug/remesa`` or ``$REMESA_BIN``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import tempfile
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

REPO = h.REPO
KILL_DELAY_S = h.KILL_DELAY_S


# ------------------------------------------------------------------------------------------------- injectors


def crash(kills: int):
    """SIGKILL the node `kills` times at seeded random moments, restart it at once on the same data."""

    def inject(ctx: h.Ctx) -> dict:
        downs = []
        for k in range(kills):
            delay = ctx.rng.uniform(*KILL_DELAY_S)
            if ctx.wait(delay):
                break
            down = ctx.node.kill_and_restart()
            downs.append(down)
            h.say(f"kill {k + 1}/{kills} after {delay:.1f}s: back in {down:.1f}s ({ctx.confirmed()} confirmed)")
        return {
            "SIGKILLs": str(len(downs)),
            "SIGKILL to ready again (s)": f"median {statistics.median(downs):.1f}, max {max(downs):.1f}" if downs else "-",
        }

    return inject


def until_ready(ctx: h.Ctx, timeout_s: float, lag_max: int = 2) -> float | None:
    """Seconds until /readyz says the chain is ok and the indexer within `lag_max` blocks of the head."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            status, v = h.http("GET", ctx.node.base + "/readyz", timeout=5)
            chain = v.get("chain", {}) if isinstance(v, dict) else {}
            if status == 200 and chain.get("state") == "ok" and (chain.get("lag_blocks") or 0) <= lag_max:
                return time.monotonic() - t0
        except h.NoAnswer:
            pass
        if ctx.wait(0.25):
            return None
    return None


def rpc_outage(seconds: float):
    """The chain RPC unreachable: half the time refused (connections reset, the port closed), half blackholed
    (connections accepted, never answered)."""

    def inject(ctx: h.Ctx) -> dict:
        assert ctx.rpc is not None
        if ctx.wait(5.0):
            return {}
        before = ctx.confirmed()
        t0 = time.monotonic()
        h.say(f"RPC down (refused) for {seconds / 2:.0f}s")
        ctx.rpc.down("refuse")
        ctx.wait(seconds / 2)
        h.say(f"RPC down (blackholed) for {seconds / 2:.0f}s")
        ctx.rpc.down("blackhole")
        ctx.wait(seconds / 2)
        t1 = time.monotonic()
        ctx.rpc.up()
        h.say("RPC back")
        during = ctx.monitor.between(t0 + 3, t1)  # the first seconds still see the last good answer
        back = until_ready(ctx, 120)
        ready_ok = bool(during) and all(s == 200 for _, s, _ in during)
        unreachable = bool(during) and all(c == "unreachable" for _, _, c in during)
        return {
            "outage (s)": f"{t1 - t0:.0f} ({seconds / 2:.0f} refused + {seconds / 2:.0f} blackholed)",
            "remittances confirmed in chat during the outage": str(ctx.confirmed() - before),
            "/readyz during the outage": h.Monitor.summary(during),
            "chain ok and indexer caught up after the outage (s)": f"{back:.1f}" if back is not None else "not within 120",
            "checks": [
                ("/readyz stayed 200 (the database was fine) and named the chain unreachable during the outage",
                 ready_ok and unreachable, h.Monitor.summary(during)),
                ("the node resumed by itself after the outage", back is not None,
                 f"{back:.1f} s" if back is not None else "not within 120 s"),
            ],
        }

    return inject


def partner_outage(seconds: float):
    """The partner's webhook endpoint refuses connections for `seconds` (backoffs scaled down by the scenario's
    environment); the partner simulator keeps polling its payouts, as a partner catching up would."""

    def inject(ctx: h.Ctx) -> dict:
        assert ctx.webhooks is not None
        if ctx.wait(3.0):
            return {}
        h.say(f"partner webhooks down for {seconds:.0f}s")
        ctx.webhooks.down("refuse")
        ctx.wait(seconds)
        ctx.webhooks.up()
        h.say("partner webhooks back")
        return {"webhook endpoint down (s)": f"{seconds:.0f}"}

    return inject


def postgres_restart(times: int):
    """The scenario's own PostgreSQL server restarted (`pg_ctl restart -m fast`, every connection cut) `times` times
    mid-run."""

    def inject(ctx: h.Ctx) -> dict:
        if ctx.postgres is None:
            raise h.RunFailed("postgres-restart needs its own PostgreSQL server (private_postgres)")
        downs, codes = [], []
        for k in range(times):
            if ctx.wait(ctx.rng.uniform(3.0, 8.0)):
                break
            t0 = time.monotonic()
            ctx.postgres.restart()
            down = time.monotonic() - t0
            downs.append(down)
            ctx.wait(1.5)  # /readyz is sampled every 0.5 s: the samples of the second after the restart
            samples = ctx.monitor.between(t0, time.monotonic())
            codes.append(h.Monitor.summary(samples))
            h.say(f"PostgreSQL restart {k + 1}/{times} took {down:.1f}s ({ctx.confirmed()} confirmed)")
        return {
            "PostgreSQL restarts": str(len(downs)),
            "restart took (s)": ", ".join(f"{d:.1f}" for d in downs),
            "/readyz around the restarts": " | ".join(codes),
        }

    return inject


def disk_full(seconds: float):
    """The SQLite file's filesystem (a tmpfs) filled to the last byte for `seconds`, then the space given back.
    Checks that the node answered with problems (not a crash), that /readyz or the API said so, and that the
    database is intact afterwards."""

    def inject(ctx: h.Ctx) -> dict:
        if ctx.wait(4.0):
            return {}
        node_dir = Path(ctx.node.env["REMESA_DATA_DIR"])
        ballast = node_dir / "ballast"
        t0 = time.monotonic()
        fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 4096, 1):  # megabytes, then pages, then the last bytes
                chunk = b"\0" * size
                try:
                    while True:
                        os.write(fd, chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)
        st = os.statvfs(node_dir)
        h.say(f"disk full ({st.f_bavail * st.f_frsize} bytes left) for {seconds:.0f}s")
        before = ctx.confirmed()
        try:
            ctx.wait(seconds)
        finally:
            ballast.unlink()
        t1 = time.monotonic()
        h.say("disk space back")
        samples = ctx.monitor.between(t0, t1)
        back = until_ready(ctx, 120)
        chk = subprocess.run(["sqlite3", str(node_dir / "remesa.sqlite"), "PRAGMA integrity_check;"],
                             capture_output=True, text=True, timeout=120)
        intact = chk.returncode == 0 and chk.stdout.strip() == "ok"
        return {
            "disk full (s)": f"{t1 - t0:.0f}",
            "remittances confirmed while full": str(ctx.confirmed() - before),
            "/readyz while full": h.Monitor.summary(samples),
            "checks": [
                ("/readyz answered 503 while the disk was full (the node could not take work durably)",
                 any(status == 503 for _, status, _ in samples), h.Monitor.summary(samples)),
                ("SQLite integrity_check ok after the disk was full", intact, chk.stdout.strip()[:200] or chk.stderr.strip()[:200]),
                ("the node resumed by itself when space came back", back is not None,
                 f"{back:.1f} s" if back is not None else "not within 120 s"),
            ],
        }

    return inject


def reorgs(count: int, max_depth: int):
    """A reorg of a seeded depth from 1 to `max_depth`, `count` times while deposits and releases are in flight,
    each one by a seeded choice of `anvil_reorg` (the removed blocks replaced at once by as many new ones; their
    transactions dropped, as after a real reorg that left them out) or `anvil_rollback` (the removed blocks gone
    and the head lower until the chain grows back: the indexer's cursor is briefly above the head)."""

    def inject(ctx: h.Ctx) -> dict:
        done: list[str] = []
        # The setup (contracts, partner, funded senders) is at or below this block: a reorg never reaches it (a
        # rollback of the senders' funding would leave them nothing to send, which tests the harness, not the node).
        floor = int(h.rpc(ctx.rpc_url, "eth_blockNumber", []), 16)
        for k in range(count):
            if ctx.wait(ctx.rng.uniform(2.0, 5.0)):
                break
            depth = ctx.rng.randint(1, max_depth)
            method = ctx.rng.choice(["anvil_reorg", "anvil_rollback"])
            depth = min(depth, int(h.rpc(ctx.rpc_url, "eth_blockNumber", []), 16) - floor)
            if depth < 1:
                h.say(f"reorg {k + 1}: skipped, the chain has no block above the setup yet")
                continue
            try:
                h.rpc(ctx.rpc_url, method, [depth, []] if method == "anvil_reorg" else [depth])
            except RuntimeError as e:  # the chain is not that high yet
                h.say(f"reorg {k + 1}: {e}")
                continue
            done.append(f"{depth}{'r' if method == 'anvil_rollback' else ''}")
            h.say(f"reorg {k + 1}/{count}: {method} depth {depth} ({ctx.confirmed()} confirmed)")
        rollbacks = sum(d.endswith("r") for d in done)
        return {"reorgs (depths; r: anvil_rollback)": f"{len(done)} ({', '.join(done)})",
                "anvil_reorg / anvil_rollback": f"{len(done) - rollbacks} / {rollbacks}",
                "confirmations (REMESA_CONFIRMATIONS)": ctx.node.env.get("REMESA_CONFIRMATIONS", "1")}

    return inject


def psql_rows(url: str, sql: str) -> list[list[str]]:
    out = subprocess.run(["psql", url, "-qtAF", "|", "-c", sql], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise h.RunFailed(f"psql: {out.stderr.strip()}")
    return [line.split("|") for line in out.stdout.splitlines() if line.strip()]


def writer_holder(ctx: h.Ctx) -> str | None:
    """The node name whose chain writer holds the sending key's lease now (None: nobody, or expired)."""
    rows = psql_rows(ctx.node.env["REMESA_DATABASE_URL"],
                     "SELECT i.node_name FROM chain_leases l JOIN node_instances i ON l.holder = 'chain@' || i.start_id "
                     "WHERE l.name LIKE 'writer:%' AND l.expires_at_unix_ms > "
                     "(extract(epoch from clock_timestamp()) * 1000)::bigint")
    return rows[0][0] if rows else None


def node_name(n: h.Node) -> str:
    rows = psql_rows(n.env["REMESA_DATABASE_URL"], "SELECT node_name, start_id FROM node_instances")
    port = n.env["REMESA_HTTP_ADDR"].rsplit(":", 1)[1]
    return next((r[0] for r in rows if r[0].endswith(":" + port)), "?")


def failover(times: int):
    """Two nodes on one PostgreSQL database behind a load balancer; the one whose writer holds the sending key's
    lease is SIGKILLed (and restarted 10 s after the other took over), `times` times."""

    def inject(ctx: h.Ctx) -> dict:
        takeovers, checks = [], []
        lease_ms = int(ctx.node.env.get("REMESA_CHAIN__LEASE_MS", "15000"))
        for k in range(times):
            if ctx.wait(ctx.rng.uniform(4.0, 8.0)):
                break
            holder = writer_holder(ctx)
            victim = next((n for n in ctx.nodes if node_name(n) == holder), None)
            if victim is None:
                h.say(f"failover {k + 1}: no node holds the writer lease now ({holder}); later")
                continue
            t0 = time.monotonic()
            victim.kill()
            h.say(f"failover {k + 1}/{times}: SIGKILL {victim.label}node ({holder}), the writer lease holder")
            new = None
            while time.monotonic() - t0 < lease_ms / 1000 + 30:
                new = writer_holder(ctx)
                if new is not None and new != holder:
                    break
                if ctx.wait(0.2):
                    return {}
            took = time.monotonic() - t0
            takeovers.append(took if new not in (None, holder) else None)
            h.say(f"  taken over by {new} after {took:.1f}s" if takeovers[-1] else "  NOT taken over")
            ctx.wait(10.0)
            victim.start()
        ok = [t for t in takeovers if t is not None]
        checks.append((f"the other node took the sending key over within the lease ({lease_ms / 1000:.0f} s) + 2 s",
                       bool(takeovers) and len(ok) == len(takeovers) and max(ok) <= lease_ms / 1000 + 2,
                       ", ".join(f"{t:.1f} s" if t is not None else "never" for t in takeovers) or "no failover"))
        return {
            "failovers (SIGKILL of the lease holder)": str(len(takeovers)),
            "takeover of the sending key (s)": ", ".join(f"{t:.1f}" if t is not None else "never" for t in takeovers),
            "lease (REMESA_CHAIN__LEASE_MS)": f"{lease_ms} ms",
            "checks": checks,
        }

    return inject


# ------------------------------------------------------------------------------------------------- scenarios


def scenarios(smoke: bool) -> list[h.Scenario]:
    def size(full: int, small: int) -> int:
        return small if smoke else full

    crash_kills = size(20, 3)
    crash_window = crash_kills * sum(KILL_DELAY_S) / 2 * 0.7
    backoff = {  # the real schedule (1 s doubling up to 1 h, 20 attempts) divided by 10
        "REMESA_PARTNER_WEBHOOK_BACKOFF_BASE_MS": "100",
        "REMESA_PARTNER_WEBHOOK_BACKOFF_MAX_MS": "360000",
    }
    return [
        h.Scenario("crash-sqlite", "Crash (SQLite)",
                   f"SIGKILL of `remesa serve` {crash_kills} times at seeded random moments (0.5-4 s after it was "
                   "ready again), restarted at once on the same data",
                   crash(crash_kills), database="sqlite", remittances=size(1000, 20), senders=size(10, 5),
                   window_s=crash_window, responses_lost=True, settle_timeout_s=size(1200, 300)),
        h.Scenario("crash-postgres", "Crash (PostgreSQL)",
                   f"as crash-sqlite, on PostgreSQL: {crash_kills} SIGKILLs",
                   crash(crash_kills), database="postgres", remittances=size(1000, 20), senders=size(10, 5),
                   window_s=crash_window, responses_lost=True, settle_timeout_s=size(1200, 300)),
        h.Scenario("rpc-outage", "RPC outage",
                   f"the chain RPC unreachable for {size(30, 10)} s through a TCP proxy in front of anvil: first "
                   "refused (open connections reset, the port closed), then blackholed (accepted, never answered)",
                   rpc_outage(size(30, 10)), remittances=size(200, 20), window_s=size(40, 15), rpc_proxy=True),
        h.Scenario("partner-outage", "Partner outage",
                   f"the partner's webhook endpoint refuses connections for {size(60, 10)} s, with the webhook "
                   "back-off schedule divided by 10 (so 60 s stand for the issue's 10 minutes)",
                   partner_outage(size(60, 10)), remittances=size(200, 20), window_s=size(40, 10), env=backoff),
        h.Scenario("postgres-restart", "Database trouble: PostgreSQL restarted",
                   f"PostgreSQL (a server of the scenario's own) restarted {size(3, 1)} times mid-run (every "
                   "connection cut)",
                   postgres_restart(size(3, 1)), database="postgres", private_postgres=True, remittances=size(200, 20),
                   window_s=size(40, 15)),
        h.Scenario("reorg-deep", "Reorgs within the confirmation depth",
                   f"{size(10, 3)} reorgs of depth 1-5 (`anvil_reorg`: new blocks at once, the removed blocks' "
                   "transactions dropped; or `anvil_rollback`: the head lower until the chain grows back) while "
                   "deposits and releases are in flight, with 5 confirmations",
                   reorgs(size(10, 3), 5), remittances=size(200, 20), window_s=size(50, 20), reorgs=True,
                   reorgs_within_confirmations=True, env={"REMESA_CONFIRMATIONS": "5"}),
        h.Scenario("reorg", "Reorgs deeper than the confirmation depth",
                   f"{size(10, 3)} reorgs of depth 1-5 (`anvil_reorg` or `anvil_rollback`, a seeded choice each "
                   "time) while deposits and releases are in flight, at the default depth of 1 confirmation",
                   reorgs(size(10, 3), 5), remittances=size(200, 20), window_s=size(50, 20), reorgs=True),
        h.Scenario("two-nodes", "Two nodes",
                   f"two `remesa serve` on one PostgreSQL database behind a round-robin load balancer; the node "
                   f"whose writer holds the sending key's lease SIGKILLed {size(3, 1)} times (restarted 10 s after the "
                   "takeover), with the default 15 s lease",
                   failover(size(3, 1)), database="postgres", nodes=2, remittances=size(200, 20),
                   window_s=size(60, 25), env={"REMESA_CHAIN__LEASE_MS": "15000"}, responses_lost=True),
        h.Scenario("disk-full", "Database trouble: SQLite's disk full",
                   f"the data directory on a 256 MB tmpfs, filled to the last byte for {size(20, 8)} s, then freed",
                   disk_full(size(20, 8)), remittances=size(200, 20), window_s=size(40, 15), tmpfs_mb=256),
    ]


# ------------------------------------------------------------------------------------------------- external suites


def external(cmd: list[str], prefix: str, timeout_s: float) -> tuple[bool, list[dict], str, float]:
    """Runs a suite that prints `PREFIX key=value …` lines; (exit ok, parsed lines, output tail, seconds)."""
    t0 = time.monotonic()
    print(f"=== {' '.join(cmd)} ===", flush=True)
    try:
        # its own process group: the time limit (or Ctrl-C here) ends the suite with everything it started
        p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    except OSError as e:
        return False, [], str(e), 0.0

    def kill_group() -> None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    lines = []
    # The output is read to its end, so the time limit is a timer that kills the suite's process group (its pipe
    # then closes).
    watchdog = threading.Timer(timeout_s, kill_group)
    watchdog.daemon = True
    watchdog.start()
    try:
        assert p.stdout is not None
        for line in p.stdout:
            print("  | " + line.rstrip(), flush=True)
            lines.append(line.rstrip())
        p.wait()
    except BaseException:
        kill_group()
        raise
    finally:
        watchdog.cancel()
    if p.returncode is not None and p.returncode < 0:
        lines.append(f"(killed after the time limit of {timeout_s:.0f} s)" if time.monotonic() - t0 >= timeout_s
                     else f"(ended by signal {-p.returncode})")
    parsed = []
    for line in lines:
        if line.startswith(prefix + " "):
            parsed.append(dict(re.findall(r"(\w+)=(\S+)", line)))
    return p.returncode == 0, parsed, "\n".join(lines[-15:]), time.monotonic() - t0


def runnable(chosen: list[h.Scenario]) -> tuple[list[h.Scenario], list[tuple[str, str]]]:
    """The scenarios this machine can run, and the others with why. Without PostgreSQL the PostgreSQL scenarios
    are skipped (unless REMESA_REQUIRE_POSTGRES=1, when they run and fail); the full disk needs root (a tmpfs)."""
    pg_ok = subprocess.run(["psql", h.pg_admin_url(), "-qtAc", "SELECT 1"], capture_output=True, text=True,
                           timeout=30).returncode == 0 if shutil.which("psql") else False
    require_pg = os.environ.get("REMESA_REQUIRE_POSTGRES") == "1"
    keep, skipped = [], []
    for sc in chosen:
        if sc.database == "postgres" and not sc.private_postgres and not pg_ok and not require_pg:
            skipped.append((sc.key, f"PostgreSQL is not reachable at {h.pg_admin_url()} (REMESA_TEST_DATABASE_URL)"))
        elif sc.private_postgres and h.pg_bindir() is None:
            skipped.append((sc.key, "its own PostgreSQL server needs PostgreSQL's server programs (initdb, pg_ctl)"))
        elif sc.tmpfs_mb and os.geteuid() != 0:
            skipped.append((sc.key, "mounting its tmpfs needs root"))
        else:
            keep.append(sc)
    return keep, skipped



# ------------------------------------------------------------------------------------------------- parallel


# The schemathesis passes api-fuzz.sh runs; each must end with 0 failures, 0 server errors and no operation of its own
# answering only 401/403 (a 422 for a rule the document states is counted apart, not a failure: api_fuzz_hooks.py).
API_FUZZ_PASSES = ("partner", "operator", "none")

def run_parallel(chosen: list[h.Scenario], seed: int, args) -> list[h.Result]:
    """Runs the scenarios `args.jobs` at a time, each as `run.py --only <key> --child-result <file>` (its own
    process, ports, data dir, log and, for postgres-restart, PostgreSQL server); prints each one's output when it
    ends. Scenario i keeps seed + i."""
    tmp = Path(tempfile.mkdtemp(prefix="remesa-faults-jobs-"))
    queue = list(enumerate(chosen))
    results: dict[int, h.Result] = {}
    running: list[tuple[int, h.Scenario, subprocess.Popen, Path, Path]] = []

    def start(i: int, sc: h.Scenario) -> None:
        out, res = tmp / f"{sc.key}.log", tmp / f"{sc.key}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--only", sc.key, "--seed", str(seed + i),
               "--child-result", str(res)] + (["--smoke"] if args.smoke else []) + (["--keep"] if args.keep else []) \
            + (["--log", args.log] if args.log else [])
        with open(out, "wb") as f:
            running.append((i, sc, subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT), out, res))
        print(f"started {sc.key} (seed {seed + i})", flush=True)

    def reap_one() -> None:
        """Waits until one running scenario ends; prints its output and records its result."""
        while True:
            for k, (i, sc, p, out, res) in enumerate(running):
                if p.poll() is None:
                    continue
                running.pop(k)
                print(out.read_text("utf-8", "replace"), end="", flush=True)
                try:
                    d = json.loads(res.read_text())
                    d["checks"] = [tuple(c) for c in d["checks"]]
                    results[i] = h.Result(**d)
                except (OSError, ValueError, TypeError) as e:
                    results[i] = h.Result(sc.key, seed + i, False, 0.0, sc.remittances, 0, [], {},
                                          [f"the scenario's process ended ({p.returncode}) without a result: {e}"],
                                          str(out))
                return
            time.sleep(0.5)

    try:
        for i, sc in queue:
            while len(running) >= args.jobs:
                reap_one()
            start(i, sc)
        while running:
            reap_one()
    finally:  # a child cleans up its node, anvil and proxies on SIGTERM
        for _, _, p, _, _ in running:
            p.terminate()
        for _, _, p, _, _ in running:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
    return [results[i] for i in sorted(results)]


# ------------------------------------------------------------------------------------------------- report


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip()


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {mem}, {platform.system()} {platform.release()}"


def md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def report(results: list[h.Result], scen: dict[str, h.Scenario], ext: list[dict], args, commit: str,
           started: str, seconds: float, skipped: list[tuple[str, str]]) -> str:
    lines = [
        "# RELIABILITY",
        "",
        f"Fault suite (`scripts/faults.sh`{' --smoke' if args.smoke else ''}) at commit `{commit}`, {started}, "
        f"{seconds / 60:.0f} minutes on {machine()}. Generated by `scripts/faults/run.py`; do not edit by hand.",
        "",
        "Every scenario runs a real node (`remesa serve`, debug build), real anvil with 1-second blocks, the real escrow",
        "and token contracts, `remesa partner-sim` as the cash-out partner (webhooks + polling), and chat senders",
        "through the terminal chat channel, while its fault is injected. Each one then checks: every remittance",
        "settled; exactly one lock, payment and settlement each; `remesa reconcile` (ledger = the escrow's balance);",
        "every remittance confirmed to a sender exists once and no other exists; the partner received on chain",
        "exactly the settled totals and the senders paid exactly the totals (nothing taken twice); the escrow ends",
        "empty; every webhook delivered (none parked, none pending); each notification seen once (information only",
        "where a SIGKILL loses the answer that carried it); the node never exited by itself; and scenario 9: none of",
        "the run's secrets (keystore passphrase, escrow owner key, operator token, the partner's and the node's",
        "signing seeds, every pickup code) in any node or partner log at the run's log level, any HTTP response the",
        "senders, partner tooling and monitor read (the recipients' own chat excepted: that is where their code is",
        "sent), or a dump of the database.",
        "",
        "Replay one scenario: `scripts/faults.sh --only <scenario> --seed <seed>`.",
        "",
        "## Summary",
        "",
        "| scenario | seed | remittances | settled | checks | result | time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ok = sum(1 for _, o, _ in r.checks if o)
        lines.append(f"| {r.scenario} | {r.seed} | {r.remittances} | {r.settled} | {ok}/{len(r.checks)} | "
                     f"{'PASS' if r.passed else '**FAIL**'} | {r.seconds:.0f} s |")
    for e in ext:
        lines.append(f"| {e['name']} | - | - | - | - | {'PASS' if e['ok'] else '**FAIL**'} | {e['seconds']:.0f} s |")
    for key, why in skipped:
        lines.append(f"| {key} | - | - | - | - | skipped: {md_escape(why)} | - |")
    lines.append("")
    for r in results:
        sc = scen[r.scenario]
        lines += [f"## {sc.title} (`{r.scenario}`)", "", f"Injected: {sc.injected}.", "",
                  f"Sizes: {r.remittances} remittances ({int(sc.bank_share * 100)}% bank deposits through the API, the "
                  f"rest cash pickups through the chat) from {sc.senders} senders, {sc.database}, logs at "
                  f"`{sc.log}`. Seed {r.seed}.", "", "| check | result | detail |", "| --- | --- | --- |"]
        for name, ok, detail in r.checks:
            lines.append(f"| {md_escape(name)} | {'PASS' if ok else '**FAIL**'} | {md_escape(detail)[:600]} |")
        lines += ["", "| figure | value |", "| --- | --- |"]
        for k, v in r.figures.items():
            lines.append(f"| {md_escape(k)} | {md_escape(str(v))} |")
        if r.errors:
            lines += ["", "Errors:", ""] + [f"- {md_escape(e)[:500]}" for e in r.errors[:5]]
        lines.append("")
    for e in ext:
        lines += [f"## {e['title']}", "", e["what"], "", "```", *e["rows"], "```", ""]
    lines += FINDINGS + NOT_COVERED
    return "\n".join(lines) + "\n"


FINDINGS = [
    "## What the suite found (and what was fixed)",
    "",
    "- **The partner feed stalled after every crash** (crash scenario): the follower that turns transitions into",
    "  partner events and webhooks held a 30-second lease under a random name, so a SIGKILLed node's restart waited",
    "  it out: no `payout.*` event or webhook for up to 30 s after each kill (the chain workers likewise, for their",
    "  15-second leases). Fixed: leases are held as `<role>@<start id>`, and a restart under the same node name",
    "  expires the dead start's leases (`store::instances::register`; test `restart_expires_the_dead_starts_leases`).",
    "- **A reorg deeper than the writer's finality depth stranded the sending key** (reorg scenario): transactions",
    "  already final (`tx_confirmations`, default 1) that the reorg removed were never sent again, and every later",
    "  transaction of the key waited on their nonces (all 20 remittances of the first run stuck). Fixed: a final",
    "  transaction whose nonce is at or above the account's nonce on chain is re-opened with its jobs and sent again",
    "  (`chain/writer.rs` `reopen_reorged`; test `reorg_under_final_transactions_sends_them_again`). The full run",
    "  then found two more ways to strand it: a reorg between reading the nonce and the receipts made a transaction",
    "  of ours look like a stranger's (dropped; once its nonce is free again it is now sent again too), and the",
    "  partner simulator's `Idempotency-Key`s replayed a withdrawn offer's 409 to the offer made again (its keys",
    "  now name the offer).",
    "- **The partner simulator's code look-ups were quadratic** (crash scenario on PostgreSQL, 1,000 remittances):",
    "  it asked the node about every code of its file for every payout. Fixed: each code is asked once.",
    "- **Pickup codes in the node's logs** (secrets scan): `GET /v1/partner/payouts/by-pickup-code/{code}` put the",
    "  code in the request span (and in any proxy's access log). Fixed: `POST /v1/partner/payouts/lookup` carries",
    "  it in the signed body; the old path still answers and is logged redacted (test",
    "  `pickup_codes_are_redacted_from_logged_uris`; `partner-sim` uses the POST).",
    "- **A webhook receiver behind a proxy refused every webhook** (partner outage scenario): `remesa partner-sim`",
    "  verified the node's signature against its own listening address instead of the registered URL the node signs.",
    "  Fixed: `--webhook-url` (test `a_receiver_behind_a_proxy_verifies_against_the_registered_url`).",
    "- **Parsers** (parser fuzzing): phone numbers whose E.164 form does not read back as itself were accepted (the",
    "  engine then dropped the phone), short valid numbers (Niue, Tokelau) did not survive JSON (a conversation",
    "  holding one lost its draft), token amounts with 99+ decimals did not parse their own rendering. Fixed, each",
    "  with a regression test; the inputs are in the corpora.",
    "- **The API contract** (API fuzzing): undocumented statuses, limits the document did not state, invalid",
    "  tuples, a `limit` given as text or a `partner_id` out of range accepted, webhook signature headers not",
    "  enforced first. Fixed. Then the rules of the request types went into the document (text lengths and",
    "  characters, codes, decimals, keys, URLs, tiers, page sizes, the state filter), a number such as `485.0` is",
    "  read as the integer JSON Schema says it is, a drawn `Idempotency-Key` is made unique as a correct client's",
    "  is (`api_fuzz_hooks.py`), and a dev chat message with neither text nor button is answered with help.",
    "- **The partner routes, fuzzed with a partner's signature for the first time** (`sign_proxy.py`): their",
    "  query-string rejections were `text/plain` instead of problem+json, `limit` and `after` out of range and",
    "  over-long cursors were clamped or ignored instead of refused, and a full rate card could exceed the signed",
    "  body's 64 KiB limit. Fixed: `ApiQuery`, 422 for each, at most 200 rates per `PUT /v1/partner/rates`.",
    "- **Storage trouble was a 500, and `/readyz` did not see it** (disk-full scenario, and reading the code behind",
    "  it): an API request whose write failed for lack of space (or a lost connection, a fail-over) answered `500",
    "  Internal error`, and `/readyz` only read, so it stayed 200 on a full disk. Fixed: a store error that can pass",
    "  (`StoreError::is_transient`) is a 503 `storage-unavailable`, every 503 problem carries `Retry-After`, and",
    "  `/readyz` commits a small write (503 when none commits within 5 s); test",
    "  `a_full_or_locked_database_answers_503_with_retry_after_and_recovers`. Every scenario now checks that each",
    "  5xx the harness read was a 503 with `Retry-After`, and that check found the same during a PostgreSQL",
    "  restart (postgres-restart): a reset connection met by the `Idempotency-Key` claim, or by partner",
    "  authentication's key look-up, was a 500. Fixed in both places and in the outbox's operator routes",
    "  (`ChainError::is_transient`).",
    "- **The last conformance failures** (API fuzzing, to 0): registering a user who already existed answered 200",
    "  with that user even when `self_custody_address` did not parse (`\"\"`), because the look-up came first (now",
    "  every field is parsed first; test in `api_contract`); the operator's rate card allowed 500 rates, more than",
    "  the 64 KiB body holds, so a valid card got 413 (now 200, as for partners); a partner's signed body did not",
    "  read `3569.0` as an integer, as every other body does; a public key of 43 base64 characters whose last one",
    "  carries stray bits was allowed by the pattern; sender and recipient names and accounts had no stated",
    "  length; `POST /v1/remittances` did not document its 404. Rules no JSON schema can state (a balance, a",
    "  partner's corridors, a point of the curve, a phone number that exists) are now stated on each operation's 422",
    "  response (`x-remesa-rules`), and the check accepts a 422 only when its problem matches one of them.",
    "- **The partner pass tested nothing** (found while doing the above): the operator pass ran first and could",
    "  suspend demo partner 1, after which every signed request was `unknown_key`. The partner pass now runs first,",
    "  and a pass whose own operations answer only 401/403 fails (`auth_refused`).",
    "- **And what the full runs found after that**: a partner id in a path was an integer, so `1019700.0` was",
    "  schema-valid (now 1 to 19 digits); the failed-jobs cursor counted bytes where its schema counts characters; an",
    "  authorization `signature` had no pattern; a `webhook_url` such as `https://N@` fits the pattern but has no host",
    "  (now a stated rule); a body refused both as sent and with `270.0` read as 270 was refused for the number",
    "  instead of what was still wrong (now the second reading's error, which names the phone). A body over 64 KiB is",
    "  refused with 413 before it is read; `scripts/faults/schemathesis.toml` counts 413 as a refusal.",
    "",
    "Observed and not changed:",
    "",
    "- Schema-valid requests the node refuses for a rule the document states (`stated_rule_refusals` in the",
    "  api-fuzz rows): rules that depend on the node's state or on content no JSON schema states. A sanctions list",
    "  must parse as the format it names; a send needs the sender's balance, and under screening the sender's name;",
    "  a phone number must exist, not only look like E.164; a partner's public key must be a point of the curve;",
    "  `send_max` must not be below `send_min`, and a rate's corridor must be one the partner registered; a zero",
    "  address is refused where money would go to it. Each operation's 422 response lists its own.",
    "- The terminal chat (the devnet's chat channel) hands each message out once: a SIGKILL while the answer is on",
    "  its way loses that message for the reader. The crash scenarios show it in the notification counts; when a",
    "  recipient's code is lost, the harness does what support would (`POST",
    "  /v1/admin/remittances/{id}/resend-pickup-code`) and counts it. WhatsApp and Telegram deliveries are retried",
    "  from the outbox instead.",
    "",
]

NOT_COVERED = [
    "## Not covered yet",
    "",
    "These scenarios of the fault issue are not in this run; until they are, nothing here claims them:",
    "",
    "- **PostgreSQL-specific scale**: the crash scenario on PostgreSQL uses the same sizes as on SQLite; nothing",
    "  here measures PostgreSQL under the throughput benchmark's load.",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="small sizes (CI)")
    ap.add_argument("--only", default="", help="comma-separated scenarios (" + ", ".join(s.key for s in scenarios(True)) +
                    ", api-fuzz, parser-fuzz)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the first scenario (default: from the clock); "
                    "scenario i uses seed+i")
    ap.add_argument("--out", default=None, help="write the report here (default: RELIABILITY.md for a full run "
                    "of every scenario, none otherwise)")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs of passed scenarios too")
    ap.add_argument("--log", default=None, help="node log filter for every scenario (default: trace)")
    ap.add_argument("--jobs", type=int, default=1, help="scenarios run at once, each in its own process "
                    "(postgres-restart always runs alone: it cuts every connection to the server)")
    ap.add_argument("--parser-fuzz-from", default=None, help="take the parser-fuzz figures from this log of an "
                    "earlier run (its FUZZ lines) instead of fuzzing again")
    ap.add_argument("--child-result", default=None, help=argparse.SUPPRESS)  # internal: one scenario, result as JSON
    args = ap.parse_args()

    def on_term(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    all_sc = scenarios(args.smoke)
    only = [x for x in args.only.split(",") if x]
    known = {s.key for s in all_sc} | {"api-fuzz", "parser-fuzz"}
    unknown = [x for x in only if x not in known]
    if unknown:
        print(f"unknown scenario(s): {unknown}; known: {sorted(known)}", file=sys.stderr)
        return 2
    chosen = [s for s in all_sc if not only or s.key in only]
    skipped: list[tuple[str, str]] = []
    if not args.child_result:
        chosen, skipped = runnable(chosen)
        for key, why in skipped:
            print(f"skipped {key}: {why}", flush=True)
    if args.log:
        chosen = [replace(s, log=args.log) for s in chosen]
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    out = args.out or (str(REPO / "RELIABILITY.md") if not args.smoke and not only else None)
    commit = git("rev-parse", "--short=12", "HEAD") + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"faults: seed {seed}, {'smoke' if args.smoke else 'full'} run of {[s.key for s in chosen]} at {commit}", flush=True)
    h.remesa_bin()
    h.anvil_bin()
    t0 = time.monotonic()
    results: list[h.Result] = []
    ext: list[dict] = []
    if args.child_result:
        r = h.run_scenario(chosen[0], seed, keep=args.keep)
        Path(args.child_result).write_text(json.dumps(dataclasses.asdict(r)))
        return 0 if r.passed else 1
    try:
        if args.jobs > 1:
            results = run_parallel(chosen, seed, args)
        else:
            for i, sc in enumerate(chosen):
                results.append(h.run_scenario(sc, seed + i, keep=args.keep))
        if not only or "api-fuzz" in only:
            cmd = ["bash", "scripts/faults/api-fuzz.sh"] + (["--smoke"] if args.smoke else [])
            _, parsed, tail, secs = external(cmd, "API-FUZZ", 3600)
            ok = sorted(p.get("auth", "") for p in parsed) == sorted(API_FUZZ_PASSES) and all(
                p.get("failures") == "0" and p.get("server_errors") == "0" and p.get("auth_refused") == "0"
                for p in parsed)
            rows = [" ".join(f"{k}={v}" for k, v in p.items()) for p in parsed] or tail.splitlines()
            ext.append({"name": "api-fuzz", "title": "API fuzzing (`api-fuzz`)", "ok": ok, "seconds": secs, "rows": rows,
                        "what": "schemathesis (pinned in `scripts/faults/requirements-api-fuzz.txt`) against the "
                                "served `/openapi.json` of `remesa dev`, every operation, `--checks all`, with the "
                                "operator's credentials, without credentials, and over the partner routes signed as "
                                "a partner through `scripts/faults/sign_proxy.py` (`scripts/faults/api-fuzz.sh`)."})
        if args.parser_fuzz_from:
            text = Path(args.parser_fuzz_from).read_text("utf-8", "replace")
            lines = [ln.strip().removeprefix("| ").strip() for ln in text.splitlines() if "FUZZ target=" in ln]
            parsed = [dict(re.findall(r"(\w+)=(\S+)", ln)) for ln in lines]
            head = text.splitlines()[0] if text else ""
            ok = bool(parsed) and all(p.get("crashes") == "0" for p in parsed)
            ext.append({"name": "parser-fuzz", "title": "Parser fuzzing (`parser-fuzz`)", "ok": ok,
                        "seconds": sum(float(p.get("seconds", 0)) for p in parsed) / 2, "rows": lines,
                        "what": "cargo-fuzz (libFuzzer) targets in `node/fuzz/` over the chat intent parser, the "
                                "WhatsApp and Telegram webhook bodies, RFC 9421 signature headers, money amounts "
                                "and phone numbers (`scripts/faults/fuzz.sh --parallel 2`), taken from an earlier "
                                f"run of this suite ({head.strip()}; no parser changed since); the committed "
                                "corpora are replayed by an ordinary test in CI."})
        elif (not args.smoke and not only) or "parser-fuzz" in only:
            cmd = ["bash", "scripts/faults/fuzz.sh", "--parallel", "2"] + (["--execs", "20000"] if args.smoke else [])
            ok, parsed, tail, secs = external(cmd, "FUZZ", 3600)
            ok = ok and bool(parsed) and all(p.get("crashes") == "0" for p in parsed)
            rows = [" ".join(f"{k}={v}" for k, v in p.items()) for p in parsed] or tail.splitlines()
            ext.append({"name": "parser-fuzz", "title": "Parser fuzzing (`parser-fuzz`)", "ok": ok, "seconds": secs,
                        "rows": rows,
                        "what": "cargo-fuzz (libFuzzer) targets in `node/fuzz/` over the chat intent parser, the "
                                "WhatsApp and Telegram webhook bodies, RFC 9421 signature headers, money amounts "
                                "and phone numbers (`scripts/faults/fuzz.sh`); the committed corpora are replayed by "
                                "an ordinary test in CI."})
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    seconds = time.monotonic() - t0
    print("\n=== summary ===", flush=True)
    for r in results:
        print(f"{'PASS' if r.passed else 'FAIL'} {r.scenario} seed={r.seed} settled={r.settled}/{r.remittances} "
              f"{r.seconds:.0f}s", flush=True)
    for e in ext:
        print(f"{'PASS' if e['ok'] else 'FAIL'} {e['name']} {e['seconds']:.0f}s", flush=True)
    for key, why in skipped:
        print(f"SKIPPED {key}: {why}", flush=True)
    if out:
        Path(out).write_text(report(results, {s.key: s for s in chosen}, ext, args, commit, started, seconds, skipped))
        print(f"wrote {out}", flush=True)
    failed = [r.scenario for r in results if not r.passed] + [e["name"] for e in ext if not e["ok"]]
    print("ALL PASS" if not failed else f"FAILED: {failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
