"""Schemathesis hooks for scripts/api-fuzz.

A few rules tie two fields of one body together, which JSON Schema cannot state and the OpenAPI
document states in words: a time window ends after it starts, and a new password is not the email
address. Generated bodies that break such a rule would be refused (422) while valid field by field,
so they are not generated. Nothing else is filtered, and no failure is ever dropped.
"""

from datetime import datetime

import schemathesis

# (method, path template) -> the (start, end) field pairs of that body.
WINDOWS = {
    ("POST", "/api/admin/events"): [("starts_at", "ends_at"), ("sale_opens_at", "sale_closes_at")],
    ("PATCH", "/api/admin/events/{id}"): [("starts_at", "ends_at"), ("sale_opens_at", "sale_closes_at")],
    ("POST", "/api/admin/events/{id}/ticket-categories"): [("sale_starts_at", "sale_ends_at")],
    ("PATCH", "/api/admin/ticket-categories/{id}"): [("sale_starts_at", "sale_ends_at")],
    ("POST", "/api/admin/events/{id}/schedules"): [("starts_at", "ends_at")],
    ("PATCH", "/api/admin/schedules/{id}"): [("starts_at", "ends_at")],
}


def _instant(value):
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None


def _in_order(body, start, end):
    a, b = _instant(body.get(start)), _instant(body.get(end))
    if a is None or b is None:
        return True
    try:
        return a < b
    except TypeError:  # one naive, one aware: the server refuses such a value on its own
        return True


@schemathesis.hook
def filter_body(context, body):
    operation = context.operation
    if operation is None or not isinstance(body, dict):
        return True
    key = (operation.method.upper(), operation.path)
    if not all(_in_order(body, s, e) for s, e in WINDOWS.get(key, [])):
        return False
    if key == ("POST", "/api/auth/register"):
        email, password = body.get("email"), body.get("password")
        if isinstance(email, str) and isinstance(password, str):
            return password.lower() != email.strip().lower()
    return True
