"""schemathesis hooks and checks for scripts/faults/api-fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

Idempotency keys. A client must use a fresh `Idempotency-Key` for every new request; the node answers 422
`idempotency-key-reused` when a key comes back with another body, as it should. schemathesis draws keys from the
header's schema (short strings such as "0") and so reuses them across unrelated requests. This hook makes every well-formed key unique (it
keeps the drawn key as a prefix, so the header stays within its documented syntax); malformed keys are left as they
are, so the 400 for a bad key is still exercised. Replays with the same key are covered by the node's own tests.

Refusals for rules the document states (`positive_data_acceptance_or_stated_rule`, run instead of schemathesis'
`positive_data_acceptance`). Some requests that fit every JSON schema are still refused, with 422, for a rule no
JSON Schema can state: the sender's balance, the corridors a partner registered, a public key that must be a point
of the curve, a phone number that must exist. The node's document states each such rule on the operation's 422
response, as text and as `x-remesa-rules` (the problem `type`, and the `reason` or a pattern of the `detail` that
tells it apart). This check is schemathesis' own, except that a 422 whose problem matches a rule stated on that
operation is not a failure; every such refusal is counted (`API_FUZZ_RULE_LOG`, one line each) and reported beside
the failures. A 422 for anything else, such as a text length or a character the document allows, still fails.

Lambda descriptions. Hypothesis describes a strategy's `.filter(lambda ...)` by parsing the lambda's whole source
module with `ast`; on CPython 3.11 that parse can fail with `SystemError: AST constructor recursion depth mismatch`
(python/cpython#106905), which aborted one operation's coverage phase in a full run (GET /v1/balances/{address},
pass without credentials). Only the lambda's printed name depends on that parse, so a failed parse names it
`lambda: <unknown>`, as Hypothesis itself does when it cannot find the source.
"""

import itertools
import json
import os
import re
import uuid

import schemathesis
from hypothesis.internal import lambda_sources as _lambda_sources
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance as _positive_data_acceptance

_describe_lambda = _lambda_sources._lambda_description


def _lambda_description_or_unknown(f, *args, **kwargs):
    try:
        return _describe_lambda(f, *args, **kwargs)
    except (SystemError, RecursionError):
        return "lambda: <unknown>"


_lambda_sources._lambda_description = _lambda_description_or_unknown

_WELL_FORMED = re.compile(r"^[!-~]{1,255}$")
_RUN = uuid.uuid4().hex[:12]
_SEQ = itertools.count()


def _stated_rule(case, response):
    """The `x-remesa-rules` entry of the operation's 422 response that this problem matches, or None."""
    if response.status_code != 422:
        return None
    try:
        problem = response.json()
        rules = case.operation.definition.raw["responses"]["422"]["x-remesa-rules"]
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(problem, dict):
        return None
    for rule in rules:
        if problem.get("type") != rule.get("type"):
            continue
        if "reason" in rule and problem.get("reason") != rule["reason"]:
            continue
        if "detail-pattern" in rule and not re.search(rule["detail-pattern"], problem.get("detail") or ""):
            continue
        return rule
    return None


@schemathesis.check
def positive_data_acceptance_or_stated_rule(ctx, response, case):
    try:
        return _positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        rule = _stated_rule(case, response)
        if rule is None:
            raise
        log = os.environ.get("API_FUZZ_RULE_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"operation": case.operation.label, "type": rule["type"],
                                    "rule": rule["rule"]}) + "\n")
        return None


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
