#!/usr/bin/env python3
"""The fault suite's harness: one seeded run of a Remesa node under a fault, driven through the chat like a user.

``scripts/faults/run.py`` (``scripts/faults.sh``) defines the scenarios; this module runs one. What a run does
(everything random comes from ``random.Random(seed)``; thread scheduling and block timing are not seeded, so a
replay with the same seed is close, not bit-exact):

 1. starts anvil (``contracts/node_modules/.bin/anvil``, ``--block-time 1``) on a free port and a fresh data dir
    (on a small tmpfs when the scenario fills the disk), and, when the scenario cuts them, TCP proxies in front of
    anvil (the node's RPC) and of the partner's webhook receiver;
 2. ``remesa devnet setup`` / ``remesa migrate`` / ``remesa devnet seed`` on SQLite or on a fresh PostgreSQL
    database (``REMESA_TEST_DATABASE_URL``'s server), with every log at the scenario's level (trace by default);
 3. starts ``remesa serve`` (stderr to ``<data_dir>/node-<n>.log``) and waits for ``/readyz``;
 4. registers chat senders (their first ``/v1/dev/chat`` message creates them) and mints them tokens;
 5. starts ``remesa partner-sim`` as partner 1 with a webhook receiver (the node's ``payout.created`` brings the
    work; it polls to catch up); recipients read their chat and the pickup code in each recipient's message goes
    to ``<data_dir>/pickup-codes.txt`` -- the node has no endpoint that returns a code;
 6. sends the remittances: cash pickups through the chat, a share of bank deposits through the HTTP API with an
    ``Idempotency-Key``; every message and request is retried with the same id or key until the node answers;
 7. meanwhile the scenario's injector thread injects its fault (SIGKILLs, an RPC outage, a webhook outage, a
    PostgreSQL restart, a full disk), a supervisor restarts the node if it dies on its own (reported, and fails
    the run), and a monitor samples ``/readyz`` every 0.5 s;
 8. waits until every remittance is settled, then checks (each PASS/FAIL): every remittance settled, exactly one
    ``funds_locked``, ``paid`` and ``settled`` each, ``remesa reconcile`` OK, remittances == confirmations,
    the partner received on chain exactly the totals, the senders paid on chain exactly the totals, the escrow
    holds nothing, no webhook delivery parked or pending, every notification seen once (where no response was lost
    to a kill), the node never exited on its own, and no secret of the run in any log, HTTP response or database
    dump (scenario 9).

A failed run keeps its data dir (path printed): node logs ``node-*.log``, ``partner-sim.log``, ``anvil.log``,
``chaos.log`` (every unusual chat/API answer), ``responses.log`` (every HTTP response body the harness saw), the
database. The node binary is ``target/debug/remesa`` (or ``$REMESA_BIN``); the harness never builds it.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import struct
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
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
ANVIL = REPO / "contracts/node_modules/.bin/anvil"
OPERATOR_TOKEN = "faults-operator-token-7f3a9c"
KEYSTORE_PASSPHRASE = "faults keystore passphrase 4b1e"
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
# how long "no webhook open, delivered count unchanged" must hold before the harness calls the deliveries drained
# (several of the partner feed's and the delivery worker's 500 ms polls)
WEBHOOK_QUIET_S = 3.0

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


_responses_lock = threading.Lock()
_responses_file = None


_server_errors: dict[str, int] = {}  # "503 with Retry-After", "500", ...: the node's 5xx answers this scenario
# The terminal chat's documented 504: the message is stored and will be answered, the reply was not ready within the
# handler's wait (the sender asks again with the same message id and gets it).
DEV_CHAT_PENDING = "504 from the terminal chat (stored, reply not ready)"


def log_responses_to(path: Path | None) -> None:
    """Every HTTP response the harness reads from now on is appended to `path` (the secrets scan reads it); the
    tally of 5xx answers starts again."""
    global _responses_file
    with _responses_lock:
        if _responses_file is not None:
            _responses_file.close()
        _responses_file = open(path, "a", encoding="utf-8") if path else None
        _server_errors.clear()


def server_errors() -> dict[str, int]:
    """The node's 5xx answers since the scenario started: a 503 is told apart by whether it said when to retry."""
    with _responses_lock:
        return dict(_server_errors)


def log_response(method: str, url: str, status: int, text: str) -> None:
    with _responses_lock:
        if _responses_file is not None:
            path = urllib.parse.urlsplit(url).path
            _responses_file.write(f"{method} {path} {status} {text}\n")


class NoAnswer(Exception):
    """Connection refused/reset, timeout: the node did not answer."""


def http(method: str, url: str, body: object = None, headers: dict | None = None, timeout: float = 60.0,
         tally: bool = True):
    """One HTTP call: (status, parsed JSON or text). Raises NoAnswer when there is no HTTP answer at all. A 5xx
    answer is tallied (`server_errors`) unless `tally` is off (the chain's JSON-RPC)."""
    data = None if body is None else json.dumps(body).encode()
    h = {"Accept": "application/json"}
    if data is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, retry_after = r.status, r.read(), r.headers.get("Retry-After")
    except urllib.error.HTTPError as e:
        status, raw, retry_after = e.code, e.read(), e.headers.get("Retry-After")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, httpclient.HTTPException) as e:
        raise NoAnswer(f"{type(e).__name__}: {e}") from None
    if tally and status >= 500:
        key = f"{status}" if status != 503 else ("503 with Retry-After" if retry_after else "503 without Retry-After")
        if status == 504 and urllib.parse.urlsplit(url).path == "/v1/dev/chat":
            key = DEV_CHAT_PENDING
        with _responses_lock:
            _server_errors[key] = _server_errors.get(key, 0) + 1
    text = raw.decode("utf-8", "replace")
    log_response(method, url, status, text)
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def rpc(url: str, method: str, params: list):
    status, v = http("POST", url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10,
                     tally=False)
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

    def __init__(self, bin_: Path, env: dict, data_dir: Path, procs: Procs, stop: threading.Event,
                 label: str = "", public_base: str | None = None) -> None:
        self.bin = bin_
        self.env = env
        self.dir = data_dir
        self.label = label  # "" for a lone node; "a-", "b-" when several share the database
        self.own = "http://" + env["REMESA_HTTP_ADDR"]  # this process itself
        self.base = public_base or self.own  # where clients reach the node (a load balancer for several)
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
            self.proc = self.procs.spawn([str(self.bin), "serve"], self.env,
                                         self.dir / f"node-{self.label}{self.starts}.log")
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
                status, _ = http("GET", self.own + "/readyz", timeout=2)
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
            self.kill()
            self.start()
            return time.monotonic() - t0

    def kill(self) -> None:
        """SIGKILL, no restart (the supervisor leaves a killed node alone until `start`)."""
        with self.lock:
            if self.proc is not None:
                Procs.kill9(self.proc)
                self.proc = None
            self.kills += 1

    def supervise_once(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is not None:
                msg = (
                    f"node {self.label}start {self.starts} exited by itself with status {self.proc.returncode} "
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

    def list_all(self, path: str, **params) -> list[dict]:
        """Every item of a paged admin list (`items` + `next_cursor`)."""
        items: list[dict] = []
        cursor = None
        for _ in range(1000):
            q = {k: v for k, v in params.items() if v is not None}
            q["limit"] = 200
            if cursor:
                q["cursor"] = cursor
            page = self.ok("GET", path + "?" + urllib.parse.urlencode(q))
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items

    def list_remittances(self, **params) -> list[dict]:
        return self.list_all("/v1/remittances", **params)


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
    scenario: "Scenario"
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
    code_resends: int = 0  # pickup codes the operator re-sent because the recipient's message was lost
    slowest_answer_s: float = 0.0  # the longest a chat message waited for its answer (retries included)
    unusual: dict = field(default_factory=dict)  # answer (status or "no answer") -> how often senders saw it
    all_codes: set = field(default_factory=set)  # every pickup code a recipient was sent (the secrets scan)
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


def plan(rng: random.Random, n: int, senders: int, window_s: float, bank_share: float) -> list[Planned]:
    """The remittances, and a pause before each, so that the sends spread over about `window_s` seconds."""
    per_sender = max(1.0, n / senders)
    think_max = 2 * window_s / per_sender
    out = []
    for i in range(n):
        amount = f"{rng.randint(1, 40)}.{rng.choice(['00', '25', '50', '99'])}"
        name, phone = rng.choice(RECIPIENTS)
        method = "bank_deposit" if rng.random() < bank_share else "cash_pickup"
        out.append(Planned(i, rng.randrange(senders), amount, name, phone, method, rng.uniform(0, think_max)))
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
        t_sent = time.monotonic()
        deadline = t_sent + ANSWER_DEADLINE_S
        tries = 0
        last = ""
        while True:
            if self.run.stop.is_set():
                raise Aborted()
            tries += 1
            try:
                status, v = self.node.api("POST", "/v1/dev/chat", body, timeout=60)
                if status == 200 and isinstance(v, dict):
                    with self.run.lock:
                        self.run.slowest_answer_s = max(self.run.slowest_answer_s, time.monotonic() - t_sent)
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
                with self.run.lock:
                    self.run.unusual[str(status)] = self.run.unusual.get(str(status), 0) + 1
                if status not in (500, 502, 503, 504):
                    raise RunFailed(f"chat {self.phone} {text!r} ({message_id}): {last}")
            except NoAnswer as e:
                last = str(e)
                with self.run.lock:
                    self.run.unusual["no answer"] = self.run.unusual.get("no answer", 0) + 1
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
                    run.all_codes.add(code.group(1))
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


# ------------------------------------------------------------------------------------------------- fault tools


class TcpProxy:
    """A TCP proxy on a local port in front of `target_port`. `down("refuse")` resets every open connection and
    closes the listening socket (connections are refused); `down("blackhole")` resets the open ones and accepts new
    ones that never get an answer (the client's timeouts fire); `up()` forwards again on the same port."""

    def __init__(self, target_port: int | list[int], name: str) -> None:
        # several targets: a load balancer (round robin over the ones that accept a connection)
        self.targets = [("127.0.0.1", p) for p in (target_port if isinstance(target_port, list) else [target_port])]
        self.next_target = 0
        self.name = name
        self.port = free_port()
        self.lock = threading.Lock()
        self.conns: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.mode = "up"
        self.outages: list[tuple[str, float]] = []  # (mode, seconds)
        self._down_at = 0.0
        self.up()

    def up(self) -> None:
        with self.lock:
            if self.mode != "up":
                self.outages.append((self.mode, time.monotonic() - self._down_at))
            self.mode = "up"
            if self.listener is not None:
                return
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind(("127.0.0.1", self.port))
            ls.listen(512)
            self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), name=f"proxy-{self.name}", daemon=True).start()

    def down(self, mode: str = "refuse") -> None:
        assert mode in ("refuse", "blackhole")
        with self.lock:
            self.mode = mode
            self._down_at = time.monotonic()
            conns, self.conns = self.conns, set()
            ls = None
            if mode == "refuse":
                ls, self.listener = self.listener, None
        if ls is not None:
            try:
                ls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            ls.close()
        for c in conns:
            self._reset(c)

    @staticmethod
    def _reset(c: socket.socket) -> None:
        try:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        except OSError:
            pass
        try:
            c.close()
        except OSError:
            pass

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            with self.lock:
                mode = self.mode
                if mode == "blackhole":
                    self.conns.add(c)  # held open, never answered; reset when the proxy comes up or goes down
                    continue
            u = None
            for k in range(len(self.targets)):
                with self.lock:
                    target = self.targets[(self.next_target + k) % len(self.targets)]
                try:
                    u = socket.create_connection(target, timeout=5)
                    u.settimeout(None)
                    break
                except OSError:
                    continue
            with self.lock:
                self.next_target = (self.next_target + 1) % len(self.targets)
            if u is None:
                self._reset(c)
                continue
            with self.lock:
                self.conns |= {c, u}
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            with self.lock:
                self.conns.discard(a)
                self.conns.discard(b)
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.down("refuse")


# The admin URL of a scenario's own PostgreSQL server (`PrivatePostgres`) while it runs; None: the shared one.
_PG_ADMIN_OVERRIDE: str | None = None


def pg_admin_url() -> str:
    if _PG_ADMIN_OVERRIDE:
        return _PG_ADMIN_OVERRIDE
    return os.environ.get("REMESA_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")


def pg_url(db: str) -> str:
    u = urllib.parse.urlsplit(pg_admin_url())
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + db, u.query, ""))


def psql(sql: str) -> None:
    out = subprocess.run(["psql", pg_admin_url(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RunFailed(f"psql {sql!r}: {out.stderr.strip()}")


def pg_bindir() -> Path | None:
    """The directory of PostgreSQL's server programs (initdb, pg_ctl): on PATH, or Debian's newest version."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")) if Path("/usr/lib/postgresql").is_dir() else []
    return versions[-1].parent if versions else None


class PrivatePostgres:
    """A PostgreSQL server of the scenario's own: `initdb` in a temporary directory, its own port, trust auth on
    127.0.0.1. Restarting it cuts only this scenario's connections, so it runs beside every other scenario, the
    tests and the benchmarks. As root, the server runs as the `postgres` user (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RunFailed("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="remesa-faults-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync",
                  "--no-instructions")
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def _run(self, program: str, *args: str) -> None:
        out = subprocess.run(self.as_user + [str(self.bindir / program), *args], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise RunFailed(f"{program}: {(out.stderr or out.stdout).strip()[-500:]}")

    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def restart(self) -> None:
        """A fast restart (`pg_ctl restart -m fast`: every connection cut, the server back with the same options)."""
        # `-l` again: without it the new server would write to (and hold open) this process's pipes
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w", "-t", "60",
                  "-m", "fast", "restart")

    def close(self, keep_data: bool) -> None:
        """Stops the server; its data directory goes too unless `keep_data`."""
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-w", "-t", "60", "-m", "immediate", "stop")
        except (RunFailed, subprocess.TimeoutExpired) as e:
            print(f"  note: stopping the private PostgreSQL server: {e}", flush=True)
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)


class Monitor:
    """Samples GET /readyz every 0.5 s: (seconds since start, HTTP status or None, chain state or None)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.samples: list[tuple[float, int | None, str | None]] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="readyz-monitor", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            t = time.monotonic() - self.t0
            try:
                status, v = http("GET", self.base + "/readyz", timeout=5)
                chain = v.get("chain", {}).get("state") if isinstance(v, dict) and isinstance(v.get("chain"), dict) else None
                self.samples.append((t, status, chain))
            except NoAnswer:
                self.samples.append((t, None, None))

    def between(self, t0: float, t1: float) -> list[tuple[float, int | None, str | None]]:
        a, b = t0 - self.t0, t1 - self.t0
        return [x for x in self.samples if a <= x[0] <= b]

    @staticmethod
    def summary(samples: list) -> str:
        counts: dict[str, int] = {}
        for _, status, chain in samples:
            k = "no answer" if status is None else f"{status}" + (f" chain={chain}" if chain else "")
            counts[k] = counts.get(k, 0) + 1
        return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "no samples"


# ------------------------------------------------------------------------------------------------- scenarios


@dataclass
class Ctx:
    """What an injector works with."""

    run: Run
    node: Node
    rng: random.Random
    rpc: TcpProxy | None
    webhooks: TcpProxy | None
    monitor: Monitor
    rpc_url: str  # anvil itself (not the proxy)
    nodes: list = field(default_factory=list)  # every node process (one, or several on one PostgreSQL database)
    postgres: PrivatePostgres | None = None  # the scenario's own PostgreSQL server (`private_postgres`)

    def wait(self, seconds: float) -> bool:
        """Sleeps; True when the run was stopped meanwhile."""
        return self.run.stop.wait(seconds)

    def confirmed(self) -> int:
        with self.run.lock:
            return len(self.run.confirmed)


@dataclass
class Scenario:
    key: str  # e.g. "crash-sqlite"
    title: str
    injected: str  # what is injected, for the report
    inject: Callable[[Ctx], dict] | None  # runs beside the sends; returns figures for the report
    database: str = "sqlite"  # or "postgres"
    remittances: int = 100
    senders: int = 5
    window_s: float = 20.0  # the sends spread over about this long
    bank_share: float = 0.25
    rpc_proxy: bool = False
    tmpfs_mb: int = 0  # the data dir on a tmpfs of this size (0: an ordinary temp dir)
    reorgs: bool = False  # the chain reorganises: a remittance may walk back (and forth) through its states
    # every reorg is within the confirmation depth: nothing the API showed may ever be walked back
    reorgs_within_confirmations: bool = False
    nodes: int = 1  # several `remesa serve` on one PostgreSQL database, behind a round-robin load balancer
    private_postgres: bool = False  # on a PostgreSQL server of its own (`PrivatePostgres`), not the shared one
    env: dict = field(default_factory=dict)
    settle_timeout_s: float = 300.0
    responses_lost: bool = False  # SIGKILLs lose answers: notification counts are then information only
    log: str = "trace"


@dataclass
class Result:
    scenario: str
    seed: int
    passed: bool
    seconds: float
    remittances: int
    settled: int
    checks: list[tuple[str, bool, str]]
    figures: dict
    errors: list[str]
    data_dir: str


def escrow_and_token(setup: dict) -> tuple[str, str]:
    d = setup["deployment"]
    return d["escrow"], d["token"]


def sqlite_dump(path: Path) -> str:
    """Every value of every table as text (bytes as hex and as UTF-8), for the secrets scan."""
    out: list[str] = []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            for row in con.execute(f'SELECT * FROM "{t}"'):
                for v in row:
                    if isinstance(v, bytes):
                        out.append(v.hex())
                        out.append(v.decode("utf-8", "replace"))
                    elif v is not None:
                        out.append(str(v))
    finally:
        con.close()
    return "\n".join(out)


def secret_forms(value: str) -> list[str]:
    """A secret as it could appear: itself, without a 0x prefix, and (for hex) base64 of its bytes."""
    forms = {value}
    v = value.removeprefix("0x")
    forms.add(v)
    if re.fullmatch(r"[0-9a-fA-F]{32,}", v) and len(v) % 2 == 0:
        import base64
        forms.add(base64.b64encode(bytes.fromhex(v)).decode())
    return [f for f in forms if len(f) >= 8]


CODE_SHAPED = re.compile(r"(?<![0-9A-Za-z])[0-9A-HJKMNP-TV-Z]{4}[- ]?[0-9A-HJKMNP-TV-Z]{4}[- ]?[0-9A-HJKMNP-TV-Z]{4}(?![0-9A-Za-z])",
                         re.IGNORECASE)


def scan_secrets(secrets: dict[str, str], sources: dict[str, str]) -> list[str]:
    """Where any secret occurs in any source: ["<secret name> in <source>", …]. Pickup codes (names starting with
    "pickup code") are found as any code-shaped string (with or without dashes, any case) whose normalised form is
    one of them: one pass per source instead of one per code."""
    found = []
    codes = {v.replace("-", "").upper(): k for k, v in secrets.items() if k.startswith("pickup code")}
    for name, value in secrets.items():
        if name.startswith("pickup code"):
            continue
        for form in secret_forms(value):
            for src, text in sources.items():
                if form in text:
                    found.append(f"{name} in {src}")
    if codes:
        for src, text in sources.items():
            for m in CODE_SHAPED.finditer(text):
                norm = re.sub(r"[- ]", "", m.group(0)).upper()
                if norm in codes:
                    found.append(f"{codes[norm]} in {src}")
    return sorted(set(found))


def run_scenario(sc: Scenario, seed: int, keep: bool = False) -> Result:
    t0 = time.monotonic()
    print(f"=== {sc.key} seed {seed}: {sc.remittances} remittances on {sc.database} ===", flush=True)
    rng = random.Random(seed)
    items = plan(rng, sc.remittances, sc.senders, sc.window_s, sc.bank_share)
    inject_rng = random.Random(rng.getrandbits(64))
    data_dir = Path(tempfile.mkdtemp(prefix=f"remesa-faults-{sc.key}-{seed}-"))
    # the node's own data (database, keystore, seeds); logs stay beside it, outside a filled tmpfs
    node_dir = data_dir / "data"
    node_dir.mkdir()
    mounted = False
    if sc.tmpfs_mb:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={sc.tmpfs_mb}m", "tmpfs", str(node_dir)], check=True)
        mounted = True
    run = Run(seed, sc, data_dir)
    log_responses_to(data_dir / "responses.log")
    say(f"data dir {data_dir}")
    node: Node | None = None
    nodes: list[Node] = []
    monitor: Monitor | None = None
    proxies: list[TcpProxy] = []
    checks: list[tuple[str, bool, str]] = []
    figures: dict = {}
    total_settled = 0
    pg_db = None
    secrets: dict[str, str] = {}
    private_pg: PrivatePostgres | None = None
    global _PG_ADMIN_OVERRIDE
    try:
        if sc.private_postgres:
            private_pg = PrivatePostgres()
            _PG_ADMIN_OVERRIDE = private_pg.admin_url()
            say(f"own PostgreSQL server at {_PG_ADMIN_OVERRIDE} ({private_pg.dir})")
        # 1. anvil (and the RPC proxy)
        anvil_port = free_port()
        anvil_args = [str(anvil_bin()), "--port", str(anvil_port), "--block-time", "1", "--accounts", "4", "--silent"]
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
        rpc_proxy = None
        if sc.rpc_proxy:
            rpc_proxy = TcpProxy(anvil_port, "rpc")
            proxies.append(rpc_proxy)
        node_rpc = f"http://127.0.0.1:{rpc_proxy.port}" if rpc_proxy else rpc_url

        # 2. devnet and node data; the partner's webhook receiver sits behind a proxy the scenario can cut
        sim_port = free_port()
        webhooks = TcpProxy(sim_port, "webhooks")
        proxies.append(webhooks)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REMESA_DATA_DIR": str(node_dir),
            "REMESA_RPC_URL": node_rpc,
            "REMESA_HTTP_ADDR": f"127.0.0.1:{free_port()}",
            "REMESA_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "REMESA_KEYSTORE_PASSPHRASE": KEYSTORE_PASSPHRASE,
            "REMESA_ESCROW_OWNER_KEY": DEV_DEPLOYER_KEY,
            "REMESA_REMITTANCE_EXPIRY_S": "3600",
            "REMESA_CONFIRMATIONS": "1",
            "REMESA_BATCH_DELAY_MS_MAX": "300",
            "REMESA_CHAIN__LEASE_MS": "3000",
            "REMESA_CHAIN__REFUND_KEEPER_INTERVAL_MS": "1000",
            "REMESA_CHAIN__BUMP_AFTER_MS": "5000",
            "REMESA_LOG": sc.log,
            "NO_COLOR": "1",
        }
        if sc.database == "postgres":
            pg_db = f"remesa_faults_{sc.key.replace('-', '_')}_{seed}_{os.getpid()}"
            psql(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
            psql(f'CREATE DATABASE "{pg_db}"')
            env["REMESA_DATABASE_URL"] = pg_url(pg_db)
        env.update(sc.env)
        lb = None
        if sc.nodes > 1:
            ports = [int(env["REMESA_HTTP_ADDR"].rsplit(":", 1)[1])] + [free_port() for _ in range(sc.nodes - 1)]
            lb = TcpProxy(ports, "load-balancer")
            proxies.append(lb)
        public = f"http://127.0.0.1:{lb.port}" if lb else None
        node = Node(remesa_bin(), env, data_dir, run.procs, run.stop, "a-" if lb else "", public)
        nodes.append(node)
        if lb:
            for k, port in enumerate(ports[1:], start=1):
                env_k = dict(env, REMESA_HTTP_ADDR=f"127.0.0.1:{port}")
                nodes.append(Node(remesa_bin(), env_k, data_dir, run.procs, run.stop, f"{chr(97 + k)}-", public))
        setup = json.loads(node.run("devnet", "setup").stdout)
        escrow, token = escrow_and_token(setup)
        node.run("migrate")
        webhook_url = f"http://127.0.0.1:{webhooks.port}/webhooks/remesa"
        node.run("devnet", "seed", "--partner-webhook-url", webhook_url)

        # 3. node(s)
        for n in nodes:
            n.start()
        say(f"node ready at {node.base}; anvil at {rpc_url}" + (f" (node via proxy :{rpc_proxy.port})" if rpc_proxy else ""))

        # 4. senders
        senders = [Sender(run, node, i) for i in range(sc.senders)]
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
        say(f"{sc.senders} senders registered and funded")

        # 5. partner simulator, with its webhook receiver
        write_codes(run)
        run.procs.spawn(
            [str(node.bin), "partner-sim", "--node-url", node.base, "--partner-id", "1",
             "--key-file", str(node_dir / "demo-partner-1.seed"), "--accept-delay-ms", "0",
             "--complete-delay-ms", "0", "--poll-interval-ms", "1000",
             "--webhook-addr", f"127.0.0.1:{sim_port}", "--webhook-url", webhook_url,
             "--pickup-codes-file", str(data_dir / "pickup-codes.txt")],
            env, data_dir / "partner-sim.log",
        )
        monitor = Monitor(node.base)
        ctx = Ctx(run, node, inject_rng, rpc_proxy, webhooks, monitor, rpc_url, nodes, private_pg)

        # 7. injector, supervisor, code pruner, recipients
        def injector() -> None:
            if sc.inject is None:
                return
            try:
                got = dict(sc.inject(ctx) or {})
                checks.extend(got.pop("checks", []))
                figures.update(got)
            except (RunFailed, Aborted) as e:
                if not isinstance(e, Aborted):
                    run.fail(str(e))
            except Exception as e:  # noqa: BLE001
                run.fail(f"injector: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            finally:
                for p in proxies:
                    if p.mode != "up":
                        p.up()

        def supervisor() -> None:
            while not run.bg_stop.wait(0.5) and not run.stop.is_set():
                try:
                    for n in nodes:
                        n.supervise_once()
                except RunFailed as e:
                    run.fail(str(e))
                except Exception as e:  # noqa: BLE001
                    run.fail(f"supervisor: {type(e).__name__}: {e}")

        # A recipient whose message with the code was lost (the terminal chat hands each message out once: a
        # SIGKILL while the answer is on its way loses it) calls support, and the operator re-sends the code.
        waiting_since: dict[str, float] = {}
        resent_at: dict[str, float] = {}

        def recover_lost_codes() -> None:
            now = time.monotonic()
            with run.lock:
                cash = [c.id for c in run.confirmed if c.method == "cash_pickup"]
                known = set(run.codes)
            try:
                open_ = {r["id"] for r in node.list_remittances(state="payout_assigned,payout_accepted")}
            except (RunFailed, Aborted):
                return
            for rid in cash:
                if rid not in open_ or rid in known:
                    waiting_since.pop(rid, None)
                    continue
                since = waiting_since.setdefault(rid, now)
                if now - since > 15 and now - resent_at.get(rid, 0) > 30:
                    resent_at[rid] = now
                    status, v = node.api("POST", f"/v1/admin/remittances/{rid}/resend-pickup-code")
                    run.log(f"resend pickup code of {rid}: {status} {v}")
                    if status == 202:
                        with run.lock:
                            run.code_resends += 1

        def pruner() -> None:
            while not run.bg_stop.wait(2.0) and not run.stop.is_set():
                try:
                    recover_lost_codes()
                except (NoAnswer, RunFailed, Aborted):
                    pass
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

        threads = [threading.Thread(target=injector, name="injector", daemon=True),
                   threading.Thread(target=supervisor, name="supervisor", daemon=True),
                   threading.Thread(target=pruner, name="pruner", daemon=True),
                   threading.Thread(target=recipients, name="recipients", daemon=True)]
        # 6. sends
        for s in senders:
            mine = [p for p in items if p.sender == s.idx]
            threads.append(threading.Thread(target=s.work, args=(mine,), name=f"sender-{s.idx}", daemon=True))
        send_t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads[4:]:  # the senders
            t.join()
        if run.errors:
            raise RunFailed(run.errors[0])
        figures["sends (s)"] = f"{time.monotonic() - send_t0:.0f}"
        say(f"all {len(run.confirmed)} remittances confirmed; waiting for the injector")
        threads[0].join()
        if run.errors:
            raise RunFailed(run.errors[0])

        # 8. settlement
        ids = [c.id for c in run.confirmed]
        deadline = time.monotonic() + sc.settle_timeout_s
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
        figures["all settled after (s)"] = f"{time.monotonic() - send_t0:.0f}"
        # webhook deliveries drain (they may still be backing off after an outage). The partner feed turns
        # transitions into webhooks on its own poll (500 ms), so "nothing open" must hold for a while with the
        # delivered count unchanged: after a visible rollback there are more than 4 per remittance, and the last
        # settlement's webhook may not be queued yet when the harness first sees every remittance settled.
        wh_deadline = time.monotonic() + 300
        quiet_since, last_delivered = None, -1
        while True:
            open_ = sum(len(node.ok("GET", f"/v1/admin/partner/webhooks?status={st}&limit=10")["items"])
                        for st in ("pending", "delivering"))
            delivered_now = len(node.list_all("/v1/admin/partner/webhooks", status="delivered"))
            if open_ == 0 and delivered_now >= 4 * len(ids) and delivered_now == last_delivered:
                quiet_since = quiet_since or time.monotonic()
            else:
                quiet_since = None
            last_delivered = delivered_now
            if (quiet_since is not None and time.monotonic() - quiet_since >= WEBHOOK_QUIET_S) \
                    or time.monotonic() > wh_deadline or run.errors:
                break
            time.sleep(0.5)
        figures["all webhooks delivered after (s)"] = f"{time.monotonic() - send_t0:.0f}"
        run.bg_stop.set()  # supervisor, pruner and the recipients' reader
        for t in threads[1:4]:
            t.join()
        say(f"settled {total_settled}/{len(ids)}")

        # 9. checks
        not_settled = {i: states.get(i, "missing") for i in ids if states.get(i) != "settled"}
        checks.append(("every remittance settled", not not_settled,
                       f"{total_settled}/{len(ids)}" + (f"; not settled: {dict(list(not_settled.items())[:20])}" if not_settled else "")))

        bad_history = []
        walked_back: dict[str, int] = {}  # "from -> to" of each transition a reorg caused -> how often
        rolled = 0
        for c in run.confirmed:
            h = node.ok("GET", f"/v1/remittances/{c.id}/events")
            tos = [e["to"] for e in h if e.get("to")]
            back = [f"{e.get('from')} -> {e.get('to')}" for e in h if e.get("cause") == "reorg"]
            for b in back:
                walked_back[b] = walked_back.get(b, 0) + 1
            rolled += bool(back)
            # the transitions the remittance made itself (a reorg's rollbacks aside)
            own = [e["to"] for e in h if e.get("to") and e.get("cause") != "reorg"]
            counts = {s: own.count(s) for s in ("funds_locked", "paid", "settled")}
            # after a visible rollback a remittance locks (or settles) again: once more per rollback, no other way
            extra = len(back)
            if not (counts["paid"] == 1 and 1 <= counts["funds_locked"] <= 1 + extra
                    and 1 <= counts["settled"] <= 1 + extra and tos[-1:] == ["settled"]):
                bad_history.append(f"{c.id}: {tos} (reorg: {back})")
        what = ("exactly one funds_locked, paid, settled per remittance" if not sc.reorgs else
                "one payment per remittance, ending settled; a lock or settlement repeated only after a rollback")
        checks.append((what, not bad_history,
                       f"{len(ids) - len(bad_history)}/{len(ids)} ok" + "".join("\n      " + b for b in bad_history[:20])))
        if sc.reorgs_within_confirmations:
            checks.append(("no state the API showed was walked back (every reorg within the confirmation depth)",
                           rolled == 0, f"{rolled} remittances walked back" + (
                               f": {', '.join(f'{k}: {v}' for k, v in sorted(walked_back.items()))}"
                               if walked_back else "")))
        if sc.reorgs or walked_back:
            figures["remittances a reorg walked back (visible through the API)"] = str(rolled)
            figures["transitions caused by reorgs"] = ", ".join(
                f"{k}: {v}" for k, v in sorted(walked_back.items())) or "none"

        rec = node.run("reconcile", check=False)
        checks.append(("remesa reconcile OK (ledger = escrow balance)",
                       rec.returncode == 0 and "OK" in rec.stdout and "MISMATCH" not in rec.stdout,
                       (rec.stdout.strip() or rec.stderr.strip()[-500:]).replace("\n", "; ")))

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

        totals = sum(int(r["total_base_units"]) for r in in_node.values())
        settled_totals = sum(int(r["total_base_units"]) for r in in_node.values() if r["state"] == "settled")
        got = token_balance(rpc_url, token, SETTLEMENT) - settlement_before
        checks.append(("the partner received on chain exactly the settled totals", got == settled_totals,
                       f"received {got}, expected {settled_totals} base units"))
        paid = sum(MINT_TOKENS * 10**6 - token_balance(rpc_url, token, s.address) for s in senders)
        checks.append(("the senders paid on chain exactly the remittances' totals (nothing taken twice)",
                       paid == totals, f"paid {paid}, totals {totals} base units"))
        held = token_balance(rpc_url, token, escrow)
        checks.append(("the escrow holds nothing once all settled", held == 0 or total_settled != len(ids),
                       f"{held} base units"))

        failed_wh = node.ok("GET", "/v1/admin/partner/webhooks?status=failed&limit=10")
        open_wh = sum(len(node.ok("GET", f"/v1/admin/partner/webhooks?status={st}&limit=200")["items"])
                      for st in ("pending", "delivering"))
        delivered = node.list_all("/v1/admin/partner/webhooks", status="delivered")
        retried = sum(1 for d in delivered if int(d.get("attempts", 1)) > 1)
        figures["webhooks delivered"] = str(len(delivered))
        figures["webhooks delivered after a retry"] = str(retried)
        # payout.created, .accepted, .paid and .settled for each remittance (all go to partner 1); a rollback the
        # partner saw (settled -> paid, paid again -> settled again) tells it again
        want_wh = 4 * len(in_node)
        enough = len(delivered) >= want_wh if walked_back else len(delivered) == want_wh
        checks.append(("every webhook delivered once: 4 per remittance (more after a visible rollback), none parked "
                       "as failed, none left pending",
                       failed_wh["failed_total"] == 0 and open_wh == 0 and enough,
                       f"{len(delivered)} delivered of {want_wh} ({retried} after a retry), "
                       f"{failed_wh['failed_total']} failed, {open_wh} pending"))

        exits = [e for n in nodes for e in n.unexpected_exits]
        checks.append(("the node never exited on its own", not exits,
                       "; ".join(exits) or ", ".join(f"{n.label}{n.starts} starts, {n.kills} kills" for n in nodes)))

        # notifications: each sender saw locked / paid / settled once per remittance
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
        chat_items = [c for c in run.confirmed if c.via == "chat"]
        for c in chat_items:
            texts = run.notifications.get(sender_phone(items[c.n].sender), [])
            for k, needle in kinds.items():
                n = sum(1 for t in texts if c.ref in t and needle in t)
                hist[k][n] = hist[k].get(n, 0) + 1
        info = "; ".join(f"{k}: " + ", ".join(f"{n}x={m}" for n, m in sorted(v.items())) for k, v in hist.items())
        figures["notifications per chat remittance"] = info
        once = all(set(v) <= {1} for v in hist.values())
        if sc.responses_lost:
            checks.append(("notifications (information: a kill loses the answer that carried one)", True, info))
        else:
            checks.append(("every sender saw each notification exactly once", once, info))

        # the node's 5xx answers: only 503 (nothing done, nothing stored), each saying when to retry
        errors = server_errors()
        errors_text = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"
        checks.append(("every 5xx answer was a 503 with Retry-After, or the terminal chat's 504 (no 500)",
                       set(errors) <= {"503 with Retry-After", DEV_CHAT_PENDING}, errors_text))
        figures["5xx answers the harness read"] = errors_text

        # readiness and the senders' experience during the run
        figures["/readyz samples"] = Monitor.summary(monitor.samples)
        figures["unusual chat answers (status: count)"] = ", ".join(
            f"{k}: {v}" for k, v in sorted(run.unusual.items())) or "none"
        figures["pickup codes re-sent by the operator (the recipient's message lost to a kill)"] = str(run.code_resends)
        figures["slowest chat answer, retries included (s)"] = f"{run.slowest_answer_s:.1f}"

        # 9b. secrets: none in any log, HTTP response or database dump
        for n in nodes:
            n.stop_node()
        secrets = run_secrets(run, node_dir, env)
        sources = {}
        for f in sorted(data_dir.glob("node-*.log")) + [data_dir / "partner-sim.log"]:
            sources[f.name] = f.read_text("utf-8", "replace")
        resp_lines = (data_dir / "responses.log").read_text("utf-8", "replace").splitlines()
        # the recipients' own chat (where the node sends them their code) is the one place a code belongs
        sources["HTTP responses"] = "\n".join(l for l in resp_lines if not l.startswith("GET /v1/dev/chat/messages "))
        if sc.database == "postgres":
            dump = subprocess.run(["pg_dump", "--data-only", pg_url(pg_db)], capture_output=True, text=True, timeout=300)
            sources["database dump"] = dump.stdout
        else:
            sources["database dump"] = sqlite_dump(node_dir / "remesa.sqlite")
        log_bytes = sum(len(v) for k, v in sources.items() if k.endswith(".log"))
        found = scan_secrets(secrets, sources)
        figures["secrets searched"] = f"{len(secrets)} ({', '.join(sorted({k.split(' #')[0] for k in secrets}))})"
        figures["log volume (MB)"] = f"{log_bytes / 1e6:.1f}"
        checks.append(("no secret in any log, HTTP response or database dump", not found,
                       f"{len(secrets)} secrets × {len(sources)} sources ({log_bytes / 1e6:.1f} MB of logs at "
                       f"'{sc.log}')" + "".join("\n      found: " + x for x in found[:30])))
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
        if mounted:  # a tmpfs goes with its run (a failed run's logs stay; its database cannot)
            subprocess.run(["umount", "-l", str(node_dir)], check=False)
        if monitor is not None:
            monitor.stop.set()
        for n in nodes:
            n.stop_node()
        run.procs.kill_all()
        for p in proxies:
            p.close()
        log_responses_to(None)

    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    for k, v in figures.items():
        print(f"  FIGURE {k}: {v}", flush=True)
    for n in run.notes[:10]:
        print("  NOTE", n, flush=True)
    for e in run.errors[:5]:
        print(f"  FAIL run: {e}", flush=True)
    passed = bool(not run.errors and checks and all(ok for _, ok, _ in checks))
    elapsed = time.monotonic() - t0
    print(f"RUN scenario={sc.key} seed={seed} remittances={len(run.confirmed)}/{len(items)} "
          f"settled={total_settled}/{len(run.confirmed)} time={elapsed:.0f}s result={'PASS' if passed else 'FAIL'}",
          flush=True)
    if private_pg is not None:
        private_pg.close(keep_data=keep or not passed)
        if keep or not passed:
            print(f"  own PostgreSQL server's data kept: {private_pg.dir / 'data'}", flush=True)
        _PG_ADMIN_OVERRIDE = None
    elif pg_db is not None and passed and not keep:
        try:
            psql(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
        except RunFailed as e:
            print(f"  note: {e}", flush=True)
    if passed and not keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        print(f"  data dir kept: {data_dir}" + (f" (PostgreSQL database {pg_db})" if pg_db else ""), flush=True)
    return Result(sc.key, seed, passed, elapsed, len(items), total_settled, checks, figures, list(run.errors),
                  str(data_dir))


def run_secrets(run: Run, data_dir: Path, env: dict) -> dict[str, str]:
    """Every secret the run used: keys, passphrase, tokens, the partner's and the node's signing seeds, each pickup
    code the recipients were sent."""
    out = {
        "keystore passphrase": env["REMESA_KEYSTORE_PASSPHRASE"],
        "escrow owner key": env["REMESA_ESCROW_OWNER_KEY"],
        "operator token": env["REMESA_OPERATOR_TOKEN"],
    }
    for name, f in (("partner 1 signing seed", "demo-partner-1.seed"), ("partner 2 signing seed", "demo-partner-2.seed"),
                    ("node webhook signing seed", "partner_webhook_ed25519.seed")):
        p = data_dir / f
        if p.exists():
            out[name] = p.read_text().strip()
    with run.lock:
        codes = set(run.all_codes)
    for i, c in enumerate(sorted(codes)):
        out[f"pickup code #{i}"] = c
    return out
