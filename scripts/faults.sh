#!/usr/bin/env bash
# Remesa's fault suite: crashes, RPC / partner / database outages, a full disk, API and parser fuzzing, and a
# search for every secret a run used in its logs, responses and database. Writes RELIABILITY.md (full run).
#
#   scripts/faults.sh            the full run (about 35 minutes on 2 cores), rewrites RELIABILITY.md
#   scripts/faults.sh --smoke    small sizes, part of scripts/test.sh
#   scripts/faults.sh --only crash-sqlite --seed 7 --keep     one scenario, one seed, data kept
#
# Uses target/debug/remesa (or $REMESA_BIN); never builds it. Needs python3, psql and pg_dump for the PostgreSQL
# scenarios (REMESA_TEST_DATABASE_URL), initdb and pg_ctl for postgres-restart (which restarts a server of its own),
# root for the tmpfs of the disk-full scenario.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec python3 "$root/scripts/faults/run.py" "$@"
