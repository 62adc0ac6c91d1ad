#!/usr/bin/env python3
"""Offline checks of deploy/spinkube, run by scripts/validate-deploy.sh.

    validate.py RENDERED.yaml   check `kubectl kustomize deploy/spinkube` output

No cluster is needed: built-in objects are checked against the Kubernetes
OpenAPI schemas (kubernetes-validate), SpinKube objects against the CRDs in
../shared/crds when that folder exists, the wiring between objects by the
checks below, and the whole against checkov's Kubernetes policies.
"""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "spinkube"
CRDS = ROOT.parent / "shared" / "crds"
MIGRATIONS_CONFIGMAP = "spindrive-migrations"
# The oldest Kubernetes SpinKube clusters are expected to run, and the newest
# the schema package knows: a field too new or already removed fails either.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
SPIN_GROUP = "core.spinkube.dev"
# Declares a template Secret's keys (its values live only in the cluster).
SECRET_KEYS_ANNOTATION = "spindrive.io/keys"


# --- the migrations ConfigMap ------------------------------------------------
# migrations/kustomization.yaml builds the Job's ConfigMap from the real
# files; it must list every migration (kustomize has no globs).


def check_migrations_listed(report):
    kustomization = yaml.safe_load((ROOT / "migrations" / "kustomization.yaml").read_text())
    listed = {f for generator in kustomization["configMapGenerator"] for f in generator["files"]}
    present = {"migrate.sh", "sweep.sh"} | {p.name for p in (ROOT / "migrations").glob("[0-9][0-9][0-9][0-9]_*.sql")}
    if listed != present:
        report.fail(
            "migrations/kustomization.yaml must list exactly migrate.sh, sweep.sh and every NNNN_*.sql: "
            f"missing {sorted(present - listed)}, extra {sorted(listed - present)}"
        )
    return f"migrations/kustomization.yaml ships all {len(present) - 2} migrations, migrate.sh and sweep.sh"


# --- helpers -------------------------------------------------------------------


class Report:
    """Prints each failure as found, and a check's summary only if it held."""

    def __init__(self):
        self.errors = []
        self._reported = 0

    def fail(self, message):
        self.errors.append(message)
        print(f"  FAIL  {message}")

    def run(self, check, *args):
        summary = check(*args, self)
        if summary and len(self.errors) == self._reported:
            print(f"  ok    {summary}")
        self._reported = len(self.errors)


def name_of(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def walk(node, key):
    """Yields every value stored under `key`, at any depth."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, key)


# --- schemas -----------------------------------------------------------------


def check_builtin_schemas(objects, report):
    for obj in objects:
        if obj["apiVersion"].startswith(SPIN_GROUP + "/"):
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                report.fail(f"{name_of(obj)}: no Kubernetes {version} schema for {obj['apiVersion']}")
            except kubernetes_validate.ValidationError as e:
                path = "/".join(str(p) for p in e.path)
                report.fail(f"{name_of(obj)}: Kubernetes {version} schema: {path}: {e.message}")
    count = sum(not o["apiVersion"].startswith(SPIN_GROUP + "/") for o in objects)
    return f"{count} built-in objects valid against Kubernetes {' and '.join(K8S_VERSIONS)} (strict)"


def closed(schema):
    """The API server drops fields its structural schema does not declare;
    closing every declared object makes such a field (a typo) an error here."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    return schema


def check_crd_schemas(objects, report):
    spin_objects = [o for o in objects if o["apiVersion"].startswith(SPIN_GROUP + "/")]
    if not CRDS.is_dir():
        print(f"  skip  SpinKube CRD check skipped: {CRDS} does not exist (a clone without ../shared)")
        return None
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = closed(version["schema"]["openAPIV3Schema"])
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    for obj in spin_objects:
        schema = schemas.get((obj["apiVersion"], obj["kind"]))
        if schema is None:
            report.fail(f"{name_of(obj)}: no served CRD version for {obj['apiVersion']} in {CRDS}")
            continue
        for error in jsonschema.Draft7Validator(schema).iter_errors(obj):
            path = "/".join(str(p) for p in error.absolute_path)
            report.fail(f"{name_of(obj)}: CRD schema: {path}: {error.message}")
    return f"{len(spin_objects)} SpinKube objects valid against the CRDs in {CRDS}"


# --- wiring between objects --------------------------------------------------


def spin_variable(app, name):
    for variable in app["spec"].get("variables", []):
        if variable["name"] == name:
            return variable
    return {}


def check_spin_apps(objects, report):
    manifest = tomllib.loads((ROOT / "spin.toml").read_text())
    declared = set(manifest.get("variables", {}))
    components = set(manifest.get("component", {}))
    executors = {o["metadata"]["name"] for o in objects if o["kind"] == "SpinAppExecutor"}
    apps = [o for o in objects if o["kind"] == "SpinApp"]
    if not apps:
        report.fail("no SpinApp in the base")
    for app in apps:
        spec = app["spec"]
        names = [v["name"] for v in spec.get("variables", [])]
        missing = sorted(declared - set(names))
        unknown = sorted(set(names) - declared)
        duplicated = sorted({n for n in names if names.count(n) > 1})
        for problem, items in (("missing", missing), ("not in spin.toml", unknown), ("duplicated", duplicated)):
            if items:
                report.fail(f"{name_of(app)}: Spin variables {problem}: {', '.join(items)}")
        for variable in spec.get("variables", []):
            if "value" not in variable and "valueFrom" not in variable:
                report.fail(f"{name_of(app)}: Spin variable {variable['name']} has no value")
        for component in spec.get("components", []):  # none: all of them
            if component not in components:
                report.fail(f"{name_of(app)}: component {component} is not in spin.toml")
        if spec.get("executor") not in executors:
            report.fail(f"{name_of(app)}: executor {spec.get('executor')} is not defined in the base")
    # Every triggered component runs in exactly one SpinApp (a worker left
    # out would leave its jobs pending forever), and one that only a Redis
    # trigger invokes serves no HTTP, so it must not carry HTTP probes.
    triggers = manifest.get("trigger", {})
    http = {t["component"] for t in triggers.get("http", []) if "component" in t}
    redis = {t["component"] for t in triggers.get("redis", [])}
    for component in sorted(http | redis):
        runners = [a for a in apps if component in a["spec"].get("components", components)]
        if len(runners) != 1:
            report.fail(f"component {component} runs in {len(runners)} SpinApps, not exactly one")
        elif component in redis - http and runners[0]["spec"].get("checks"):
            report.fail(f"{name_of(runners[0])}: runs only Redis-triggered components but has HTTP checks")
    return (
        f"{len(apps)} SpinApps set all {len(declared)} Spin variables of spin.toml, run declared components, "
        f"each of the {len(http | redis)} triggered components in exactly one ({len(redis)} on Redis)"
    )


def secret_keys(secret):
    keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    declared = (secret["metadata"].get("annotations") or {}).get(SECRET_KEYS_ANNOTATION, "")
    return keys | {k.strip() for k in declared.split(",") if k.strip()}


def check_secret_refs(objects, report):
    secrets = {o["metadata"]["name"]: secret_keys(o) for o in objects if o["kind"] == "Secret"}
    refs = 0
    for obj in objects:
        wanted = [(r.get("name", ""), r["key"]) for r in walk(obj, "secretKeyRef")]
        wanted += [(r.get("name", ""), None) for r in walk(obj, "secretRef")]
        for volume_secret in (v for v in walk(obj, "secret") if isinstance(v, dict) and "secretName" in v):
            items = volume_secret.get("items") or [{"key": None}]
            wanted += [(volume_secret["secretName"], item["key"]) for item in items]
        for secret, key in wanted:
            refs += 1
            if secret not in secrets:
                report.fail(f"{name_of(obj)}: Secret {secret!r} is not defined in the base")
            elif key is not None and key not in secrets[secret]:
                report.fail(f"{name_of(obj)}: Secret {secret} has no key {key!r} (declared: {sorted(secrets[secret])})")
    return f"{refs} Secret references name Secrets and keys the base defines"


def check_migration_job(objects, report):
    """The Job must create and migrate the database the apps use."""
    by_kind_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    job = by_kind_name.get(("Job", "spindrive-migrate"))
    # Generated ConfigMaps carry a content hash after their name.
    configmap = next(
        (o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(MIGRATIONS_CONFIGMAP + "-")),
        None,
    )
    if job is None or configmap is None:
        report.fail("Job spindrive-migrate or ConfigMap spindrive-migrations missing from the base")
        return None
    size = sum(len(v.encode()) for v in configmap["data"].values())
    if size > 900 * 1024:
        report.fail(f"ConfigMap {MIGRATIONS_CONFIGMAP} holds {size} bytes, near the 1 MiB limit")
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    secret_of = {
        v["name"]: v["secret"]["secretName"] for v in job["spec"]["template"]["spec"]["volumes"] if "secret" in v
    }
    app_secret = secret_of.get("app-secret")
    pairs = {"db_host": "PGHOST", "db_port": "PGPORT", "db_name": "APP_DATABASE", "db_user": "APP_USER"}
    for app in (o for o in objects if o["kind"] == "SpinApp"):
        for variable, env_name in pairs.items():
            if spin_variable(app, variable).get("value") != env.get(env_name):
                report.fail(f"{name_of(app)}: {variable} differs from the migration Job's {env_name}")
        ref = spin_variable(app, "db_password").get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("name") != app_secret:
            report.fail(f"{name_of(app)}: db_password is not read from the Secret the Job uses ({app_secret})")
        for variable in ("db_host", "db_read_host"):
            host = spin_variable(app, variable).get("value")
            if ("Service", host) not in by_kind_name:
                report.fail(f"{name_of(app)}: {variable} {host!r} is not a Service of the base")
    return "migration Job targets the database, role and Secret the SpinApps use"


# Spin's Postgres pool opens up to 64 connections per component and address
# in each pod (hard-coded in Spin 4.0.2; one component per SpinApp here).
SPIN_POOL_SIZE = 64
# Superuser slots, Patroni's own sessions, the migration Job, the sweep.
CONNECTION_HEADROOM = 20


def check_connection_budget(objects, report):
    """Every pod's full pool, plus headroom, fits in max_connections. Only
    pods running a component allowed to reach Postgres count."""
    components = tomllib.loads((ROOT / "spin.toml").read_text()).get("component", {})
    uses_postgres = {
        name for name, component in components.items()
        if any(host.startswith("postgres://") for host in component.get("allowed_outbound_hosts", []))
    }
    apps = [
        o for o in objects
        if o["kind"] == "SpinApp" and uses_postgres & set(o["spec"].get("components", components))
    ]
    pods = sum(app["spec"].get("replicas", 1) for app in apps)
    statefulset = next((o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "spindrive-pg"), None)
    if statefulset is None:
        report.fail("StatefulSet spindrive-pg missing from the base")
        return None
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    spilo = next((e.get("value") for e in container.get("env", []) if e["name"] == "SPILO_CONFIGURATION"), None)
    config = yaml.safe_load(spilo or "{}")
    limit = int(config["bootstrap"]["dcs"]["postgresql"]["parameters"]["max_connections"])
    needed = pods * SPIN_POOL_SIZE + CONNECTION_HEADROOM
    if needed > limit:
        report.fail(
            f"{pods} Spin pods x {SPIN_POOL_SIZE} pooled connections + {CONNECTION_HEADROOM} headroom = {needed} "
            f"exceeds Postgres max_connections {limit} (deploy/spinkube/README.md, Connections)"
        )
    return (
        f"connections: {pods} Spin pods using Postgres x {SPIN_POOL_SIZE} + {CONNECTION_HEADROOM} = {needed} "
        f"<= max_connections {limit}"
    )


# --- policies ------------------------------------------------------------------


def check_policies(rendered, report):
    command = [
        str(Path(sys.executable).with_name("checkov")),
        "--file", str(rendered),
        "--framework", "kubernetes",
        "--skip-download",  # offline: no guidelines or platform policies
        "--output", "json",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        report.fail(f"checkov did not run (exit {result.returncode}):\n{result.stderr[-2000:]}")
        return None
    outcome = data[0] if isinstance(data, list) else data
    summary = outcome["summary"]
    for check in outcome["results"]["failed_checks"]:
        report.fail(f"checkov {check['check_id']} on {check['resource']}: {check['check_name']}")
    for check in outcome["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
        if reason in ("", "No comment provided"):  # checkov's stand-in for none
            report.fail(f"checkov {check['check_id']} on {check['resource']} is suppressed without a reason")
        print(f"  skip  checkov {check['check_id']} on {check['resource']}: {reason}")
    return f"checkov: {summary['passed']} policy checks hold, {summary['skipped']} suppressed (reasons above)"


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    rendered = Path(argv[0])
    objects = [o for o in yaml.safe_load_all(rendered.read_text()) if o]
    report = Report()
    print(f"{len(objects)} objects rendered from deploy/spinkube")
    report.run(check_migrations_listed)
    report.run(check_builtin_schemas, objects)
    report.run(check_crd_schemas, objects)
    report.run(check_spin_apps, objects)
    report.run(check_secret_refs, objects)
    report.run(check_migration_job, objects)
    report.run(check_connection_budget, objects)
    report.run(check_policies, rendered)
    if report.errors:
        print(f"deploy/spinkube: {len(report.errors)} problem(s), see FAIL above")
        return 1
    print("deploy/spinkube: all checks hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
