"""Parses Prometheus text expositions with prometheus-client's parser and checks them.

Usage: check_exposition.py MONITORING_DOC EXPOSITION...

Checks: the text parses; every family has HELP and a known type; names are lowercase
snake_case, ours prefixed `moltbot_saas_` (or the conventional `process_`); counters end in
`_total`; time is in `_seconds`, sizes in `_bytes` (no other units); no label names a tenant,
an id or a path, and no label value looks like an id; histograms are cumulative with
`+Inf == _count`; the expected families are there; every family is documented in
docs/monitoring.md.
"""

import re
import sys

from prometheus_client.parser import text_string_to_metric_families

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
FORBIDDEN_LABELS = {"tenant", "tenant_id", "account_id", "id", "path", "url", "user", "key"}
BAD_UNITS = ("_milliseconds", "_ms", "_microseconds", "_us", "_kb", "_mb", "_minutes", "_hours")
EXPECTED = {
    "moltbot_saas_http_requests": "counter",
    "moltbot_saas_http_request_duration_seconds": "histogram",
    "moltbot_saas_build_info": "gauge",
    "moltbot_saas_db_pool_connections": "gauge",
    "moltbot_saas_db_pool_max_connections": "gauge",
    "moltbot_saas_db_pool_waits": "counter",
    "moltbot_saas_db_available": "gauge",
    "moltbot_saas_write_batch_requests": "histogram",
    "moltbot_saas_write_batch_commit_duration_seconds": "histogram",
    "moltbot_saas_events_ingested": "counter",
    "moltbot_saas_gateway_config_renders": "counter",
    "moltbot_saas_gateway_config_document_bytes": "gauge",
    "moltbot_saas_gateway_config_served_bytes": "counter",
    "moltbot_saas_tenants": "gauge",
    "moltbot_saas_webhook_queue_deliveries": "gauge",
    "moltbot_saas_webhook_oldest_due_age_seconds": "gauge",
    "moltbot_saas_store_gauges_up": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds": "counter",
    "process_open_fds": "gauge",
}


def check(text, doc, where):
    errors = []
    families = {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = fam
        name = fam.name
        if not NAME.match(name):
            errors.append(f"{name}: not lowercase snake_case")
        if not (name.startswith("moltbot_saas_") or name.startswith("process_")):
            errors.append(f"{name}: not prefixed moltbot_saas_ (or process_)")
        if fam.type not in ("counter", "gauge", "histogram"):
            errors.append(f"{name}: type {fam.type}")
        if not fam.documentation:
            errors.append(f"{name}: no HELP")
        if any(name.endswith(u) or (u + "_") in name for u in BAD_UNITS):
            errors.append(f"{name}: a unit other than seconds or bytes")
        words = name.split("_")
        if {"duration", "latency", "age"} & set(words) and not name.endswith("_seconds"):
            errors.append(f"{name}: time not in _seconds")
        if fam.type == "gauge" and name.endswith("_total"):
            errors.append(f"{name}: a gauge named like a counter")
        # Documented: the family (the counter's sample name, with _total) in docs/monitoring.md.
        documented = name + "_total" if fam.type == "counter" else name
        if f"`{documented}`" not in doc:
            errors.append(f"{documented}: not in docs/monitoring.md")
        buckets = {}
        for s in fam.samples:
            if fam.type == "counter" and not (s.name.endswith("_total") or s.name.endswith("_created")):
                errors.append(f"{s.name}: a counter sample without _total")
            for label, value in s.labels.items():
                if label in FORBIDDEN_LABELS:
                    errors.append(f"{s.name}: label {label} (unbounded)")
                if UUID.search(value):
                    errors.append(f"{s.name}: label {label}={value} looks like an id")
            if s.value != s.value:  # NaN
                errors.append(f"{s.name}: NaN")
            if fam.type == "histogram":
                key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                b = buckets.setdefault(key, {"le": [], "count": None})
                if s.name.endswith("_bucket"):
                    b["le"].append((float(s.labels["le"]), s.value))
                elif s.name.endswith("_count"):
                    b["count"] = s.value
        for key, b in buckets.items():
            les = sorted(b["le"])
            values = [v for _, v in les]
            if values != sorted(values):
                errors.append(f"{name}{dict(key)}: buckets not cumulative")
            if not les or les[-1][0] != float("inf") or les[-1][1] != b["count"]:
                errors.append(f"{name}{dict(key)}: +Inf bucket is not _count")
    for name, kind in EXPECTED.items():
        fam = families.get(name)
        if fam is None:
            errors.append(f"{name}: missing")
        elif fam.type != kind:
            errors.append(f"{name}: {fam.type}, expected {kind}")
    http = families.get("moltbot_saas_http_requests")
    if http is not None:
        routes = {s.labels.get("route") for s in http.samples}
        for route in ("/tenants/{id}", "/tenants", "/events", "unmatched"):
            if route not in routes:
                errors.append(f"moltbot_saas_http_requests_total: no route {route} in {sorted(routes)}")
    print(f"{where}: {len(families)} families, {sum(len(f.samples) for f in families.values())} samples")
    return [f"{where}: {e}" for e in errors]


def main():
    doc = open(sys.argv[1], encoding="utf-8").read()
    errors = []
    for path in sys.argv[2:]:
        errors += check(open(path, encoding="utf-8").read(), doc, path)
    for e in errors:
        print("FAIL", e)
    if errors:
        sys.exit(1)
    print("metrics exposition: OK")


if __name__ == "__main__":
    main()
