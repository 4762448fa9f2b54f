#!/usr/bin/env python3
"""Seeded kill-and-restart soak test of a Remesa node (SQLite), driven through the chat like an operator would.

What one run does (everything random comes from ``random.Random(seed)``; the seed is printed first, so a failing
run is reproduced with ``--runs 1 --seed <seed>`` -- the kill *moments* are seeded, but thread scheduling and
block timing are not, so a reproduction is close, not bit-exact):

 1. starts anvil (``contracts/node_modules/.bin/anvil``, ``--block-time 1``) on a free port, and a fresh data dir;
 2. ``remesa devnet setup`` / ``remesa migrate`` / ``remesa devnet seed`` with the environment of the e2e tests
    (``tests/lib.rs``, ``Node::new``);
 3. starts ``remesa serve`` (stderr to ``<data_dir>/node-<n>.log``, one file per start) and waits for ``/readyz``;
 4. registers a few chat senders (their first ``/v1/dev/chat`` message creates them) and mints them tokens;
 5. starts ``remesa partner-sim`` as partner 1 (log ``<data_dir>/partner-sim.log``); the recipients read their chat
    (``/v1/dev/chat/messages``), and the pickup code in each recipient's message is written to
    ``<data_dir>/pickup-codes.txt`` -- the node has no endpoint that returns a code (codes of paid remittances are
    pruned from the file so the simulator's look-ups stay cheap);
 6. sends the remittances: cash pickups through the chat ("send 12 usd to Maria +502 5555 0101, cash pickup",
    then "yes"), one conversation per sender in its own thread; a share of bank deposits (``--bank-share``) goes
    through the HTTP API (``POST /v1/quotes`` + ``POST /v1/remittances`` with an ``Idempotency-Key`` and a
    recipient account), because the chat has no way to give a recipient account. Every chat message is retried with
    the same ``message_id`` (every API POST with the same key) until the node answers;
 7. meanwhile a killer thread SIGKILLs the node ``--kills`` times, at seeded random moments (uniform 0.5-4 s after
    the node was ready again), and restarts it at once on the same data dir and the same address; a supervisor
    thread restarts the node if it ever dies on its own (that is reported and fails the run);
 8. waits (``--settle-timeout-s``) until every remittance is ``settled``;
 9. checks, each printed as PASS/FAIL:
      - every remittance settled;
      - the history of each remittance has exactly one ``funds_locked``, one ``paid`` and one ``settled``;
      - ``remesa reconcile`` prints OK (ledger escrow account == escrow contract balance);
      - the remittances in the node are exactly the ones confirmed (one per chat "Done!" / API create, no extra,
        no duplicate, none missing) and their number equals the number planned;
      - the partner's settlement address received on chain exactly the sum of the remittances' totals;
      - the node never exited on its own;
    and prints (INFO, never failing) how many chat notifications (locked / paid / settled) each sender saw per
    remittance -- delivery to the terminal chat is at-least-once-ish and a notification handed out in a response
    lost to a kill is gone, so these are indications only.
10. prints one summary line per run:
      ``RUN seed=<s> remittances=<n> kills=<k> settled=<m>/<n> time=<t>s result=PASS|FAIL``
    and at the end ``ALL PASS`` or ``FAILED seeds: ...``. A failed run keeps its data dir (path printed: node logs
    ``node-*.log``, ``partner-sim.log``, ``anvil.log``, ``chaos.log`` = every unusual chat/API answer seen, the
    SQLite database ``remesa.sqlite``); ``--keep`` keeps all of them.

Exit status: 0 if every run passed, 1 if any failed, 2 on a setup problem, 130 on Ctrl-C. All processes started by
the script (anvil, node, partner-sim) are killed at the end, also on Ctrl-C or an exception.

Usage::

    scripts/chaos/kill-restart.py --runs 10 --remittances 150 --kills 20 --seed 1   # run i uses seed+i
    scripts/chaos/kill-restart.py --smoke                                           # CI: 1 run, 20 remittances, 3 kills

The node binary is ``target/debug/remesa`` (or ``$REMESA_BIN``); the script never builds it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import http.client as httpclient
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANVIL = REPO / "contracts/node_modules/.bin/anvil"
OPERATOR_TOKEN = "chaos-operator-token"
# Anvil account 0: deployer and escrow owner on the devnet (as in tests/lib.rs).
DEV_DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
# Demo partner 1's settlement address (anvil account 2).
SETTLEMENT = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
SENDERS = 5
MINT_TOKENS = 100_000
RECIPIENTS = [
    ("Maria", "+502 5555 0101"),
    ("Jose", "+502 5555 0102"),
    ("Ana", "+502 5555 0103"),
    ("Luis", "+502 5555 0104"),
    ("Carmen", "+502 5555 0105"),
]
# How long one chat message / API call is retried while the node does not answer it.
ANSWER_DEADLINE_S = 240.0
READY_TIMEOUT_S = 60.0
KILL_DELAY_S = (0.5, 4.0)

START = time.monotonic()


def ts() -> str:
    return f"[{time.monotonic() - START:7.1f}s]"


_print_lock = threading.Lock()


def say(*parts: object) -> None:
    with _print_lock:
        print(ts(), *parts, flush=True)


class RunFailed(Exception):
    """The run cannot go on (the node does not come back, a message gets no answer, ...)."""


class Aborted(Exception):
    """The run was stopped (another thread failed, Ctrl-C)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remesa_bin() -> Path:
    p = Path(os.environ.get("REMESA_BIN", REPO / "target/debug/remesa"))
    for _ in range(20):
        if p.exists():
            return p
        print(f"{p} is missing (being built?); waiting 30 s", flush=True)
        time.sleep(30)
    raise SystemExit(f"{p} is missing: build it first (cargo build --workspace --all-targets, as scripts/test.sh does)")


def anvil_bin() -> Path:
    if not ANVIL.exists():
        print(f"{ANVIL} is missing: running scripts/install-toolchain.sh", flush=True)
        subprocess.run([str(REPO / "scripts/install-toolchain.sh")], cwd=REPO, check=True)
    if not ANVIL.exists():
        raise SystemExit(f"{ANVIL} is still missing after scripts/install-toolchain.sh")
    return ANVIL


# ------------------------------------------------------------------------------------------------- HTTP


class NoAnswer(Exception):
    """Connection refused/reset, timeout: the node did not answer."""


def http(method: str, url: str, body: object = None, headers: dict | None = None, timeout: float = 60.0):
    """One HTTP call: (status, parsed JSON or text). Raises NoAnswer when there is no HTTP answer at all."""
    data = None if body is None else json.dumps(body).encode()
    h = {"Accept": "application/json"}
    if data is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, httpclient.HTTPException) as e:
        raise NoAnswer(f"{type(e).__name__}: {e}") from None
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def rpc(url: str, method: str, params: list):
    status, v = http("POST", url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10)
    if status != 200 or not isinstance(v, dict) or "error" in v:
        raise RuntimeError(f"{method}: {status} {v}")
    return v["result"]


def token_balance(rpc_url: str, token: str, who: str) -> int:
    data = "0x70a08231" + who.lower().removeprefix("0x").rjust(64, "0")
    r = rpc(rpc_url, "eth_call", [{"to": token, "data": data}, "latest"])
    return int(r, 16) if r not in ("0x", None) else 0


# ------------------------------------------------------------------------------------------------- processes


class Procs:
    """Every process this script started (each in its own process group), to be killed at the end."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: list[subprocess.Popen] = []

    def spawn(self, args: list[str], env: dict, log: Path) -> subprocess.Popen:
        with open(log, "wb") as f:
            p = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=f, start_new_session=True
            )
        with self.lock:
            self.procs.append(p)
        return p

    @staticmethod
    def kill9(p: subprocess.Popen) -> None:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def kill_all(self) -> None:
        with self.lock:
            procs, self.procs = self.procs, []
        for p in procs:
            self.kill9(p)


class Node:
    """`remesa serve` on one data dir and one address; restarted in place."""

    def __init__(self, bin_: Path, env: dict, data_dir: Path, procs: Procs, stop: threading.Event) -> None:
        self.bin = bin_
        self.env = env
        self.dir = data_dir
        self.base = "http://" + env["REMESA_HTTP_ADDR"]
        self.procs = procs
        self.stop = stop
        self.lock = threading.RLock()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0
        self.unexpected_exits: list[str] = []

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run([str(self.bin), *args], env=self.env, capture_output=True, text=True, timeout=300)
        if check and out.returncode != 0:
            raise RunFailed(f"remesa {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out

    def start(self) -> None:
        with self.lock:
            self.starts += 1
            self.proc = self.procs.spawn([str(self.bin), "serve"], self.env, self.dir / f"node-{self.starts}.log")
            self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RunFailed(
                    f"node start {self.starts} exited with {self.proc.returncode} before ready "
                    f"(see {self.dir}/node-{self.starts}.log)"
                )
            try:
                status, _ = http("GET", self.base + "/readyz", timeout=2)
                if status == 200:
                    return
            except NoAnswer:
                pass
            time.sleep(0.1)
        raise RunFailed(f"node start {self.starts} not ready after {READY_TIMEOUT_S}s (node-{self.starts}.log)")

    def kill_and_restart(self) -> float:
        """SIGKILL, restart at once, wait for /readyz; returns the downtime."""
        with self.lock:
            t0 = time.monotonic()
            if self.proc is not None:
                Procs.kill9(self.proc)
            self.kills += 1
            self.start()
            return time.monotonic() - t0

    def supervise_once(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is not None:
                msg = (
                    f"node start {self.starts} exited by itself with status {self.proc.returncode} "
                    f"(see node-{self.starts}.log)"
                )
                self.unexpected_exits.append(msg)
                say("UNEXPECTED", msg, "- restarting it")
                self.start()

    def stop_node(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    Procs.kill9(self.proc)

    # --- API -----------------------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: object = None, key: str | None = None, timeout: float = 60.0):
        h = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        if key:
            h["Idempotency-Key"] = key
        return http(method, self.base + path, body, h, timeout)

    def api_retry(self, method: str, path: str, body: object = None, key: str | None = None, what: str = ""):
        """Retries while the node does not answer, answers 5xx, or 409 'in progress'; returns (status, body)."""
        deadline = time.monotonic() + ANSWER_DEADLINE_S
        last = ""
        while True:
            if self.stop.is_set():
                raise Aborted()
            try:
                status, v = self.api(method, path, body, key)
                txt = json.dumps(v)
                in_progress = status == 409 and ("in-use" in txt or "in_use" in txt or "in progress" in txt)
                if status < 500 and not in_progress:
                    return status, v
                last = f"{status} {v}"
            except NoAnswer as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise RunFailed(f"{what or method + ' ' + path}: no answer for {ANSWER_DEADLINE_S}s (last: {last})")
            time.sleep(0.25)

    def ok(self, method: str, path: str, body: object = None, key: str | None = None):
        status, v = self.api_retry(method, path, body, key)
        if not 200 <= status < 300:
            raise RunFailed(f"{method} {path}: {status} {v}")
        return v

    def list_remittances(self, **params) -> list[dict]:
        items: list[dict] = []
        cursor = None
        for _ in range(1000):
            q = {k: v for k, v in params.items() if v is not None}
            q["limit"] = 200
            if cursor:
                q["cursor"] = cursor
            page = self.ok("GET", "/v1/remittances?" + urllib.parse.urlencode(q))
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items


# ------------------------------------------------------------------------------------------------- one run


@dataclass
class Planned:
    n: int
    sender: int
    amount: str
    name: str
    phone: str
    method: str  # "cash_pickup" (chat) or "bank_deposit" (API)
    think_s: float  # the sender's pause before this remittance


@dataclass
class Confirmed:
    n: int
    id: str
    ref: str
    via: str
    method: str


@dataclass
class Run:
    seed: int
    args: argparse.Namespace
    dir: Path
    procs: Procs = field(default_factory=Procs)
    stop: threading.Event = field(default_factory=threading.Event)  # abort: a failure or Ctrl-C
    bg_stop: threading.Event = field(default_factory=threading.Event)  # the supervisor and pruner stop
    lock: threading.Lock = field(default_factory=threading.Lock)
    confirmed: list[Confirmed] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    notifications: dict = field(default_factory=dict)  # phone -> [text]
    codes: dict = field(default_factory=dict)  # remittance id -> pickup code (not yet paid)
    seen_codes: dict = field(default_factory=dict)  # short reference -> code read in a recipient's chat
    chat_retries: int = 0
    replays: int = 0

    def log(self, msg: str) -> None:
        with self.lock:
            with open(self.dir / "chaos.log", "a", encoding="utf-8") as f:
                f.write(f"{ts()} {msg}\n")

    def fail(self, msg: str) -> None:
        with self.lock:
            self.errors.append(msg)
        self.log("ERROR " + msg)
        say("ERROR", msg)
        self.stop.set()


def plan(rng: random.Random, n: int, kills: int, bank_share: float) -> list[Planned]:
    """The remittances, and a pause before each so that the sends spread over about the first 70% of the kill
    window (the last kills then hit the payouts, releases and settlements still in flight)."""
    window_s = kills * ((KILL_DELAY_S[0] + KILL_DELAY_S[1]) / 2 + 0.3)
    per_sender = max(1.0, n / SENDERS)
    think_max = 2 * 0.7 * window_s / per_sender
    out = []
    for i in range(n):
        amount = f"{rng.randint(1, 40)}.{rng.choice(['00', '25', '50', '99'])}"
        name, phone = rng.choice(RECIPIENTS)
        method = "bank_deposit" if rng.random() < bank_share else "cash_pickup"
        out.append(Planned(i, rng.randrange(SENDERS), amount, name, phone, method, rng.uniform(0, think_max)))
    return out


def sender_phone(i: int) -> str:
    return f"+1415555{i + 1:04d}"


class Sender:
    """One chat user: drives its conversation strictly sequentially."""

    def __init__(self, run: Run, node: Node, idx: int) -> None:
        self.run = run
        self.node = node
        self.idx = idx
        self.phone = sender_phone(idx)
        self.user_id = ""
        self.address = ""

    def chat(self, text: str, message_id: str) -> list[str]:
        """Sends one chat message, retried with the same message_id until the node answers; the reply texts."""
        body = {"as": self.phone, "text": text, "message_id": message_id}
        deadline = time.monotonic() + ANSWER_DEADLINE_S
        tries = 0
        last = ""
        while True:
            if self.run.stop.is_set():
                raise Aborted()
            tries += 1
            try:
                status, v = self.node.api("POST", "/v1/dev/chat", body, timeout=60)
                if status == 200 and isinstance(v, dict):
                    if tries > 1:
                        with self.run.lock:
                            self.run.chat_retries += tries - 1
                            self.run.replays += 1
                    with self.run.lock:
                        self.run.notifications.setdefault(self.phone, []).extend(
                            m.get("text", "") for m in v.get("notifications", [])
                        )
                    return [m.get("text", "") for m in v.get("replies", [])]
                last = f"{status} {v}"
                if status not in (500, 502, 503, 504):
                    raise RunFailed(f"chat {self.phone} {text!r} ({message_id}): {last}")
            except NoAnswer as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise RunFailed(f"chat {self.phone} {text!r} ({message_id}): no answer for {ANSWER_DEADLINE_S}s ({last})")
            time.sleep(0.2 if tries < 10 else 0.5)

    def register(self) -> None:
        replies = self.chat("balance", f"s{self.run.seed}-{self.idx}-hello")
        self.run.log(f"{self.phone} balance -> {replies}")
        u = self.node.ok(
            "GET", "/v1/admin/users?" + urllib.parse.urlencode({"channel": "terminal", "external_id": self.phone})
        )
        self.user_id, self.address = u["id"], u["address"]
        shown = " ".join(replies)
        if self.address.lower() not in shown.lower():
            self.run.log(f"note: wallet {self.address} not shown in the balance reply {replies}")

    def known_ids(self) -> set[str]:
        return {r["id"] for r in self.node.list_remittances(sender_user_id=self.user_id)}

    def send_chat(self, p: Planned) -> None:
        text = f"send {p.amount} usd to {p.name} {p.phone}, cash pickup"
        for attempt in range(6):
            mid = f"s{self.run.seed}-r{p.n}-a{attempt}"
            replies = self.chat(text, mid + "-send")
            if not any("Your quote" in r for r in replies):
                self.run.log(f"{self.phone} #{p.n} {text!r} -> unexpected {replies}")
                continue
            replies = self.chat("yes", mid + "-yes")
            joined = "\n".join(replies)
            m = re.search(r"Done! Your transfer \*?([0-9a-f]{8})\*? is on its way", joined)
            if not m:
                self.run.log(f"{self.phone} #{p.n} 'yes' ({mid}-yes) -> unexpected {replies}")
                with self.run.lock:
                    self.run.notes.append(f"#{p.n}: 'yes' answered {replies!r}; sent again")
                continue
            ref = m.group(1)
            rid = self.resolve(ref)
            with self.run.lock:
                self.run.confirmed.append(Confirmed(p.n, rid, ref, "chat", "cash_pickup"))
            return
        raise RunFailed(f"#{p.n} {self.phone}: no confirmed transfer after 6 attempts (see chaos.log)")

    def resolve(self, ref: str) -> str:
        hits = [r["id"] for r in self.node.list_remittances(sender_user_id=self.user_id)
                if r["id"].removeprefix("0x").startswith(ref)]
        with self.run.lock:
            taken = {c.id for c in self.run.confirmed}
        fresh = [h for h in hits if h not in taken]
        if len(hits) != 1:
            self.run.log(f"{self.phone} ref {ref}: {len(hits)} remittances match {hits}")
        if not fresh:
            raise RunFailed(f"{self.phone}: chat confirmed {ref} but no (new) remittance has that reference: {hits}")
        return fresh[0]

    def send_api(self, p: Planned) -> None:
        """A bank deposit through the HTTP API (the chat cannot ask for a recipient account)."""
        for attempt in range(6):
            status, q = self.node.api_retry(
                "POST", "/v1/quotes",
                {"send_amount": p.amount, "country": "GT", "currency": "GTQ", "payout_method": "bank_deposit"},
                what=f"#{p.n} quote",
            )
            if status != 201:
                self.run.log(f"#{p.n} quote -> {status} {q}")
                continue
            body = {
                "quote_id": q["id"],
                "sender": {"kind": "user", "user_id": self.user_id},
                "recipient": {"phone": p.phone.replace(" ", ""), "name": p.name, "account": f"GT-{p.n:06d}"},
            }
            key = f"s{self.run.seed}-bank-{p.n}-a{attempt}"
            status, r = self.node.api_retry("POST", "/v1/remittances", body, key, what=f"#{p.n} create")
            if status in (200, 201):
                with self.run.lock:
                    self.run.confirmed.append(Confirmed(p.n, r["id"], r["id"][2:10], "api", "bank_deposit"))
                return
            self.run.log(f"#{p.n} create ({key}) -> {status} {r}")
        raise RunFailed(f"#{p.n}: bank deposit not created after 6 attempts (see chaos.log)")

    def work(self, items: list[Planned]) -> None:
        try:
            for p in items:
                if self.run.stop.wait(p.think_s):
                    return
                if p.method == "cash_pickup":
                    self.send_chat(p)
                else:
                    self.send_api(p)
        except Aborted:
            pass
        except RunFailed as e:
            self.run.fail(str(e))
        except Exception as e:  # noqa: BLE001
            self.run.fail(f"sender {self.phone}: {type(e).__name__}: {e}\n{traceback.format_exc()}")


CODE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})(?![0-9A-Za-z])")
REF_IN_TEXT = re.compile(r"Ref: ([0-9a-f]{8})")


def read_recipient_codes(run: Run, node: "Node") -> None:
    """The recipients read their chat once; codes of confirmed remittances go to the codes file."""
    for _, phone in RECIPIENTS:
        try:
            status, v = node.api("GET", "/v1/dev/chat/messages?" + urllib.parse.urlencode({"as": phone.replace(" ", "")}))
        except NoAnswer:
            continue
        if status != 200:
            continue
        for m in v.get("notifications", []):
            text = m.get("text", "")
            code, ref = CODE_IN_TEXT.search(text), REF_IN_TEXT.search(text)
            if code and ref:
                with run.lock:
                    run.seen_codes[ref.group(1)] = code.group(1)
    with run.lock:
        changed = False
        for c in run.confirmed:
            if c.method == "cash_pickup" and c.id not in run.codes and c.ref in run.seen_codes:
                run.codes[c.id] = run.seen_codes.pop(c.ref)
                changed = True
        if changed:
            write_codes(run)


def write_codes(run: Run) -> None:
    """Rewrites the pickup-codes file atomically (called with run.lock held)."""
    tmp = run.dir / "pickup-codes.txt.tmp"
    tmp.write_text("".join(c + "\n" for c in run.codes.values()))
    os.replace(tmp, run.dir / "pickup-codes.txt")


def one_run(seed: int, args: argparse.Namespace) -> dict:
    t0 = time.monotonic()
    print(f"=== seed {seed}: {args.remittances} remittances, {args.kills} kills ===", flush=True)
    rng = random.Random(seed)
    items = plan(rng, args.remittances, args.kills, args.bank_share)
    kill_rng = random.Random(rng.getrandbits(64))
    data_dir = Path(tempfile.mkdtemp(prefix=f"remesa-chaos-{seed}-"))
    run = Run(seed, args, data_dir)
    say(f"data dir {data_dir}")
    node: Node | None = None
    checks: list[tuple[str, bool, str]] = []
    total_settled = 0
    info = None
    try:
        # 1. anvil
        anvil_port = free_port()
        anvil_args = [str(anvil_bin()), "--port", str(anvil_port), "--block-time", "1", "--accounts", "4", "--silent"]
        if args.gas_limit:
            anvil_args += ["--gas-limit", str(args.gas_limit)]
        run.procs.spawn(anvil_args, dict(os.environ), data_dir / "anvil.log")
        rpc_url = f"http://127.0.0.1:{anvil_port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                rpc(rpc_url, "eth_chainId", [])
                break
            except (NoAnswer, RuntimeError):
                if time.monotonic() > deadline:
                    raise RunFailed("anvil does not answer") from None
                time.sleep(0.2)

        # 2. devnet and node data
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REMESA_DATA_DIR": str(data_dir),
            "REMESA_RPC_URL": rpc_url,
            "REMESA_HTTP_ADDR": f"127.0.0.1:{free_port()}",
            "REMESA_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "REMESA_KEYSTORE_PASSPHRASE": "chaos passphrase",
            "REMESA_ESCROW_OWNER_KEY": DEV_DEPLOYER_KEY,
            "REMESA_REMITTANCE_EXPIRY_S": "3600",
            "REMESA_CONFIRMATIONS": "1",
            "REMESA_BATCH_DELAY_MS_MAX": "300",
            "REMESA_CHAIN__LEASE_MS": "3000",
            "REMESA_CHAIN__REFUND_KEEPER_INTERVAL_MS": "1000",
            "REMESA_CHAIN__BUMP_AFTER_MS": "5000",
            "REMESA_LOG": "info,sqlx=warn",
        }
        node = Node(remesa_bin(), env, data_dir, run.procs, run.stop)
        setup = json.loads(node.run("devnet", "setup").stdout)
        token = setup["deployment"]["token"]
        node.run("migrate")
        node.run("devnet", "seed")

        # 3. node
        node.start()
        say(f"node ready at {node.base}; anvil at {rpc_url}")

        # 4. senders
        senders = [Sender(run, node, i) for i in range(SENDERS)]
        for s in senders:
            s.register()
            node.run("devnet", "mint", "--to", s.address, "--amount", str(MINT_TOKENS))
        want = str(MINT_TOKENS * 10**6)
        deadline = time.monotonic() + 90
        for s in senders:
            while node.ok("GET", f"/v1/balances/{s.address}")["balance_base_units"] != want:
                if time.monotonic() > deadline:
                    raise RunFailed(f"the mint to {s.address} is not indexed")
                time.sleep(0.5)
        settlement_before = token_balance(rpc_url, token, SETTLEMENT)
        say(f"{SENDERS} senders registered and funded")

        # 5. partner simulator
        write_codes(run)
        run.procs.spawn(
            [str(node.bin), "partner-sim", "--node-url", node.base, "--partner-id", "1",
             "--key-file", str(data_dir / "demo-partner-1.seed"), "--accept-delay-ms", "0",
             "--complete-delay-ms", "0", "--poll-interval-ms", "200",
             "--pickup-codes-file", str(data_dir / "pickup-codes.txt")],
            env, data_dir / "partner-sim.log",
        )

        # 7. killer, supervisor, code pruner
        def killer() -> None:
            try:
                for k in range(args.kills):
                    delay = kill_rng.uniform(*KILL_DELAY_S)
                    if run.stop.wait(delay):
                        return
                    down = node.kill_and_restart()
                    with run.lock:
                        n = len(run.confirmed)
                    say(f"kill {k + 1}/{args.kills} after {delay:.1f}s: back in {down:.1f}s "
                        f"({n}/{len(items)} confirmed)")
            except RunFailed as e:
                run.fail(str(e))
            except Exception as e:  # noqa: BLE001
                run.fail(f"killer: {type(e).__name__}: {e}")

        def supervisor() -> None:
            while not run.bg_stop.wait(0.5) and not run.stop.is_set():
                try:
                    node.supervise_once()
                except RunFailed as e:
                    run.fail(str(e))
                except Exception as e:  # noqa: BLE001
                    run.fail(f"supervisor: {type(e).__name__}: {e}")

        def pruner() -> None:
            while not run.bg_stop.wait(2.0) and not run.stop.is_set():
                with run.lock:
                    pending = list(run.codes)
                if not pending:
                    continue
                try:
                    done = {r["id"] for r in node.list_remittances(state="paid,settled")}
                except (RunFailed, Aborted):
                    continue
                with run.lock:
                    gone = [i for i in run.codes if i in done]
                    if gone:
                        for i in gone:
                            del run.codes[i]
                        write_codes(run)

        def recipients() -> None:
            while not run.bg_stop.wait(0.5) and not run.stop.is_set():
                read_recipient_codes(run, node)

        threads = [threading.Thread(target=killer, name="killer", daemon=True),
                   threading.Thread(target=supervisor, name="supervisor", daemon=True),
                   threading.Thread(target=pruner, name="pruner", daemon=True),
                   threading.Thread(target=recipients, name="recipients", daemon=True)]
        # 6. sends
        for s in senders:
            mine = [p for p in items if p.sender == s.idx]
            threads.append(threading.Thread(target=s.work, args=(mine,), name=f"sender-{s.idx}", daemon=True))
        for t in threads:
            t.start()
        for t in threads[4:]:  # the senders
            t.join()
        if run.errors:
            raise RunFailed(run.errors[0])
        say(f"all {len(run.confirmed)} remittances confirmed; waiting for the remaining kills")
        threads[0].join()
        if run.errors:
            raise RunFailed(run.errors[0])

        # 8. settlement
        ids = [c.id for c in run.confirmed]
        deadline = time.monotonic() + args.settle_timeout_s
        last_report = 0.0
        states: dict[str, str] = {}
        while True:
            states = {r["id"]: r["state"] for r in node.list_remittances()}
            total_settled = sum(1 for i in ids if states.get(i) == "settled")
            if total_settled == len(ids) or time.monotonic() > deadline or run.errors:
                break
            if time.monotonic() - last_report > 10:
                counts: dict[str, int] = {}
                for i in ids:
                    counts[states.get(i, "missing")] = counts.get(states.get(i, "missing"), 0) + 1
                say(f"settled {total_settled}/{len(ids)}: {dict(sorted(counts.items()))}")
                last_report = time.monotonic()
            time.sleep(1.0)
        run.bg_stop.set()  # supervisor, pruner and the recipients' reader
        for t in threads[1:4]:
            t.join()
        say(f"settled {total_settled}/{len(ids)}")

        # 9. checks
        not_settled = {i: states.get(i, "missing") for i in ids if states.get(i) != "settled"}
        checks.append(("every remittance settled", not not_settled,
                       f"{total_settled}/{len(ids)}" + (f"; not settled: {not_settled}" if not_settled else "")))

        bad_history = []
        for c in run.confirmed:
            h = node.ok("GET", f"/v1/remittances/{c.id}/events")
            tos = [e["to"] for e in h if e.get("to")]
            counts = {s: tos.count(s) for s in ("funds_locked", "paid", "settled")}
            if any(v != 1 for v in counts.values()):
                bad_history.append(f"{c.id}: {tos}")
        checks.append(("exactly one funds_locked, paid, settled per remittance", not bad_history,
                       f"{len(ids) - len(bad_history)}/{len(ids)} ok" + "".join("\n      " + b for b in bad_history[:20])))

        rec = node.run("reconcile", check=False)
        checks.append(("remesa reconcile OK", rec.returncode == 0 and "OK" in rec.stdout and "MISMATCH" not in rec.stdout,
                       (rec.stdout.strip() or rec.stderr.strip()[-500:])))

        in_node = {r["id"]: r for r in node.list_remittances()}
        confirmed_ids = [c.id for c in run.confirmed]
        dup = sorted({i for i in confirmed_ids if confirmed_ids.count(i) > 1})
        extra = sorted(set(in_node) - set(confirmed_ids))
        missing = sorted(set(confirmed_ids) - set(in_node))
        planned_ok = len(run.confirmed) == len(items) and sorted(c.n for c in run.confirmed) == list(range(len(items)))
        ok = not dup and not extra and not missing and planned_ok and len(in_node) == len(items)
        by_via = {v: sum(1 for c in run.confirmed if c.via == v) for v in ("chat", "api")}
        detail = (f"{len(in_node)} in the node, {len(run.confirmed)} confirmed "
                  f"({by_via['chat']} chat cash pickups, {by_via['api']} API bank deposits), {len(items)} planned")
        if extra:
            detail += "\n      not confirmed but in the node: " + ", ".join(
                f"{i} ({in_node[i]['state']}, {in_node[i].get('payout_method')}, {in_node[i].get('send_amount')})"
                for i in extra[:20])
        if missing:
            detail += f"\n      confirmed but missing: {missing[:20]}"
        if dup:
            detail += f"\n      confirmed twice: {dup[:20]}"
        checks.append(("remittances == confirmations (no duplicate, none lost)", ok, detail))

        expected = sum(int(in_node[i]["total_base_units"]) for i in in_node if in_node[i]["state"] == "settled")
        got = token_balance(rpc_url, token, SETTLEMENT) - settlement_before
        checks.append(("partner settled on chain exactly the sum of the totals", got == expected,
                       f"received {got}, expected {expected} base units"))

        checks.append(("the node never exited on its own", not node.unexpected_exits,
                       "; ".join(node.unexpected_exits) or f"{node.starts} starts, {node.kills} kills"))

        # notifications (information only)
        for s in senders:
            for _ in range(3):
                try:
                    status, v = node.api("GET", "/v1/dev/chat/messages?" + urllib.parse.urlencode({"as": s.phone}))
                    if status == 200:
                        run.notifications.setdefault(s.phone, []).extend(
                            m.get("text", "") for m in v.get("notifications", []))
                except NoAnswer:
                    pass
                time.sleep(0.3)
        kinds = {"locked": "is locked in escrow", "paid": "recipient has been paid", "settled": "complete and settled"}
        hist = {k: {} for k in kinds}
        for c in run.confirmed:
            texts = run.notifications.get(sender_phone_of(items, c.n), [])
            for k, needle in kinds.items():
                n = sum(1 for t in texts if c.ref in t and needle in t)
                hist[k][n] = hist[k].get(n, 0) + 1
        info = "; ".join(f"{k}: " + ", ".join(f"{n}x={m}" for n, m in sorted(v.items())) for k, v in hist.items())
        run.log(f"notifications per remittance (count x = remittances): {info}")
    except KeyboardInterrupt:
        print(f"interrupted: data dir kept: {data_dir}", flush=True)
        raise
    except (RunFailed, Aborted) as e:
        msg = str(e) or "aborted"
        if not run.errors:
            run.errors.append(msg)
        say("ERROR", msg)
    except Exception as e:  # noqa: BLE001
        run.errors.append(f"{type(e).__name__}: {e}")
        say("ERROR", traceback.format_exc())
    finally:
        run.stop.set()
        run.bg_stop.set()
        if node is not None:
            node.stop_node()
        run.procs.kill_all()

    info_lines = []
    if info is not None:
        info_lines.append(f"INFO notifications per remittance (count x = remittances): {info}")
    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    for line in info_lines:
        print("  " + line, flush=True)
    for n in run.notes[:10]:
        print("  NOTE", n, flush=True)
    if run.errors:
        for e in run.errors[:5]:
            print(f"  FAIL run: {e}", flush=True)
    passed = not run.errors and checks and all(ok for _, ok, _ in checks)
    elapsed = time.monotonic() - t0
    kills = node.kills if node else 0
    print(f"RUN seed={seed} remittances={len(run.confirmed)}/{len(items)} kills={kills} "
          f"settled={total_settled}/{len(run.confirmed)} chat-retries={run.chat_retries} "
          f"time={elapsed:.0f}s result={'PASS' if passed else 'FAIL'}", flush=True)
    if passed and not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        print(f"  data dir kept: {data_dir}", flush=True)
    return {"seed": seed, "passed": bool(passed)}


def sender_phone_of(items: list[Planned], n: int) -> str:
    return sender_phone(items[n].sender)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--remittances", type=int, default=150)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1, help="run i uses seed+i")
    ap.add_argument("--gas-limit", type=int, default=None, help="anvil --gas-limit (block gas limit)")
    ap.add_argument("--settle-timeout-s", type=float, default=300.0)
    ap.add_argument("--bank-share", type=float, default=0.25,
                    help="share of remittances sent as bank deposits through the HTTP API (default 0.25)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir of passed runs too")
    ap.add_argument("--smoke", action="store_true", help="CI: 1 run, 20 remittances, 3 kills")
    args = ap.parse_args()
    if args.smoke:
        args.runs, args.remittances, args.kills = 1, 20, 3

    def on_term(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    print(f"seed {args.seed} (runs {args.runs}: seeds {args.seed}..{args.seed + args.runs - 1})", flush=True)
    remesa_bin()
    anvil_bin()
    results = []
    try:
        for i in range(args.runs):
            results.append(one_run(args.seed + i, args))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    failed = [r["seed"] for r in results if not r["passed"]]
    print("ALL PASS" if not failed else f"FAILED seeds: {failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
