"""schemathesis checks of the access matrix (docs/security.md), loaded with SCHEMATHESIS_HOOKS.

CONTRACT_EXPECT selects what every answer must be:
- `unauthenticated`: no credential: every operation that declares security answers 401.
- `foreign`: another tenant's API key: every operation under /tenants/{id} (the seeded tenant's
  id) answers 404, exactly like a missing tenant; the others answer as the matrix says for a
  tenant key (its own /me, /plans, /openapi.json: 2xx; operator-only routes: 403).
"""

import os
import re
import uuid

import schemathesis

MODE = os.environ.get("CONTRACT_EXPECT", "")

# Operations a tenant API key may call outside /tenants/{id}: the rest are operator-only (403),
# or the gateway's (403), or a user's own session (403 for a key).
TENANT_KEY_GLOBAL = {("GET", "/me"), ("GET", "/plans"), ("GET", "/openapi.json")}


# The documented form of an Idempotency-Key (its `pattern` in the document).
KEY_FORM = re.compile(r"^[!#-~]([ -~]{0,253}[!-~])?$")


@schemathesis.hook
def before_call(ctx, case, kwargs):
    """A fresh Idempotency-Key for every request that has a well-formed one: generated keys repeat
    (the coverage phase reuses its boundary values), and a key reused with another body is
    answered 422 `idempotency_key_reused` by design (docs/api.md). Malformed keys stay, so
    their rejection is still checked."""
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and KEY_FORM.match(key):
        headers["Idempotency-Key"] = str(uuid.uuid4())


def _declares_security(case):
    return bool(case.operation.definition.raw.get("security"))


@schemathesis.check
def access_matrix(ctx, response, case):
    method, path = case.method.upper(), case.operation.path
    status = response.status_code
    allow = response.headers.get("allow")
    if status == 405 and allow and method not in ", ".join(allow).split(", "):
        # A method the path does not take (the coverage phase tries them): 405, whoever asks.
        return None
    sent_credential = "Authorization" in response.request.headers
    if MODE == "unauthenticated" or not sent_credential:
        # schemathesis also drops the credential on purpose (its auth checks): 401 then too.
        if _declares_security(case) and status != 401:
            raise AssertionError(f"{method} {path} without a credential answered {status}, not 401")
    elif MODE == "foreign":
        if not _declares_security(case):
            return None
        if path.startswith("/tenants/{id}"):
            if status != 404:
                raise AssertionError(
                    f"{method} {path} with another tenant's key answered {status}, not 404"
                )
        elif (method, path) in TENANT_KEY_GLOBAL:
            if not (200 <= status < 300 or status in (400, 422)):
                raise AssertionError(f"{method} {path} with a tenant key answered {status}")
        elif status != 403:
            raise AssertionError(f"{method} {path} with a tenant key answered {status}, not 403")
    return None
