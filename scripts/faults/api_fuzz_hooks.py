"""schemathesis hooks for scripts/faults/api-fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

A client must use a fresh `Idempotency-Key` for every new request; the node answers 422 `idempotency-key-reused`
when a key comes back with another body, as it should. schemathesis draws keys from the header's schema (short
strings such as "0") and so reuses them across unrelated requests. This hook makes every well-formed key unique (it
keeps the drawn key as a prefix, so the header stays within its documented syntax); malformed keys are left as they
are, so the 400 for a bad key is still exercised. Replays with the same key are covered by the node's own tests.
"""

import itertools
import re
import uuid

import schemathesis

_WELL_FORMED = re.compile(r"^[!-~]{1,255}$")
_RUN = uuid.uuid4().hex[:12]
_SEQ = itertools.count()


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() == "idempotency-key":
            value = headers[name]
            if isinstance(value, str) and _WELL_FORMED.match(value):
                headers[name] = f"{value[:200]}-{_RUN}-{next(_SEQ)}"
