"""Schemathesis hooks for .ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

- `no_pi_echo`: a check that fails when a response echoes a PI-like string submitted in the
  request (body, query or path), e.g. a name, mobile, email, ID number, address or any field
  value. Values that are legitimately echoed (ids, purposes, category keys, enums, timestamps)
  are not PI and are skipped by the key they travel under.
- `map_path_parameters`: half of the generated `{id}` path parameters are replaced by real
  subject ids of the vault under test (PIVAULT_ST_SUBJECTS), so reads, consents, disclosures and
  erasures reach stored subjects and their PI.
"""

import json
import os
import random

import schemathesis

# Keys whose values are identifiers, enum values, names of things or instants that the API
# echoes by design (never a PI value of a subject).
NOT_PI_KEYS = {
    "id", "subject_id", "purpose", "purposes", "categories", "category", "action", "kind",
    "recipient", "region", "given_by", "method", "event_ref", "by", "record", "name", "ground",
    "state", "format", "jurisdiction", "reason", "at", "from", "to", "due_before", "limit",
    "run", "separate", "principal", "roles", "key_id",
    # An incident's facts are the security team's text, published by design (PI-shaped text is
    # refused with text_holds_pi); its scope names keys and principals.
    "severity", "what_happened", "cause", "possible_impact", "measures_taken",
    "measures_planned", "self_help", "remedies", "systems", "keys", "principals", "store",
    "lang", "effective_at", "after", "mark", "occurred_at", "discovered_at",
    # A legal hold's reference is a case or order number, returned with the hold by design; a
    # reference holding a mobile or ID number is refused with text_holds_pi.
    "reference",
}
MIN_LEN = 4
SUBSTRING_MIN = 8

_subjects = [s for s in os.environ.get("PIVAULT_ST_SUBJECTS", "").split(",") if s]
_rng = random.Random(11)
_findings = os.environ.get("PIVAULT_ST_FINDINGS")


def _pi_strings(value, key=None, out=None):
    """Every string of length >= MIN_LEN in `value` that is not under a NOT_PI_KEYS key."""
    if out is None:
        out = set()
    if key in NOT_PI_KEYS:
        return out
    if isinstance(value, str):
        if len(value.strip()) >= MIN_LEN:
            out.add(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _pi_strings(v, k if isinstance(k, str) else None, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _pi_strings(v, key, out)
    return out


def _response_strings(text):
    """The response body as text and, if it is JSON, every string and key in it."""
    out = [text]
    try:
        doc = json.loads(text)
    except ValueError:
        return out

    def walk(v):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                out.append(k)
                # An error's `field` names the parameter (`kind`), never its value: a submitted
                # value that happens to be a parameter's name is not echoed.
                if k != "field":
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    return out


@schemathesis.check
def no_pi_echo(ctx, response, case):
    """A response never echoes a submitted PI-like value (GB/T 35273 §6; policy §8)."""
    submitted = set()
    body = case.body
    if isinstance(body, (bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError:
            body = body.decode("utf-8", "replace")
    _pi_strings(body, None, submitted)
    _pi_strings(case.query or {}, None, submitted)
    _pi_strings(case.path_parameters or {}, None, submitted)
    if not submitted:
        return None
    try:
        text = response.text
    except Exception:  # a body that is not text cannot echo a string
        return None
    haystack = _response_strings(text)
    # A value is echoed when a response string is that value, or (for values of at least
    # SUBSTRING_MIN characters) contains it. Shorter values inside a longer string are words of
    # the fixed messages ("name" in "a decision names the subject"), not an echo.
    echoed = sorted(
        s
        for s in submitted
        if any(s == h or (len(s) >= SUBSTRING_MIN and s in h) for h in haystack)
    )
    if echoed:
        msg = (
            f"{case.method} {case.path} -> {response.status_code} echoes "
            f"{len(echoed)} submitted value(s): {[e[:40] for e in echoed]}"
        )
        if _findings:
            with open(_findings, "a", encoding="utf-8") as f:
                f.write(msg + "\n")
        raise AssertionError(msg)
    return None


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if path_parameters and "id" in path_parameters and _subjects and _rng.random() < 0.5:
        path_parameters["id"] = _rng.choice(_subjects)
    return path_parameters
