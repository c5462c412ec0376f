{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "copytrader.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name; release name alone when it already contains the chart name. */}}
{{- define "copytrader.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "copytrader.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "copytrader.selectorLabels" -}}
app.kubernetes.io/name: {{ include "copytrader.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "copytrader.labels" -}}
helm.sh/chart: {{ include "copytrader.chart" . }}
{{ include "copytrader.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: copytrader
{{- end -}}

{{- define "copytrader.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "copytrader.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "copytrader.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Secret holding COPYTRADER_SECRET_KEY: the user's existingSecret or the chart's own. */}}
{{- define "copytrader.secretName" -}}
{{- default (printf "%s-secret" (include "copytrader.fullname" .)) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "copytrader.accountsConfigMapName" -}}
{{- default (printf "%s-accounts" (include "copytrader.fullname" .)) .Values.accounts.existingConfigMap -}}
{{- end -}}

{{/*
The topic that bounds a role's replicas: the partitions of the topic its consumer group reads.
A member beyond that partition count is assigned none of it and only adds rebalances.
ingest (no consumer group), store and web are not bounded here.
*/}}
{{- define "copytrader.roleTopics" -}}
{{- toJson (dict "fanout" "trade.signals" "execute" "orders.requests" "track" "trade.executions") -}}
{{- end -}}

{{/* A roles string ("ingest, fanout") as a JSON list of role names, blanks dropped. */}}
{{- define "copytrader.roleList" -}}
{{- $roles := list -}}
{{- range splitList "," (nospace (toString .)) -}}
{{- if . -}}{{- $roles = append $roles . -}}{{- end -}}
{{- end -}}
{{- toJson $roles -}}
{{- end -}}

{{/*
Worker processes as a JSON list of {name, spec}: the legacy single `worker` block when it is
set (it replaces workerGroups), else every enabled entry of workerGroups over workerDefaults
(a key left out or empty in a group inherits the default).
*/}}
{{- define "copytrader.workerGroups" -}}
{{- $v := .Values -}}
{{- $groups := list -}}
{{- if $v.worker -}}
{{- $legacy := dict "replicas" 1 "roles" "ingest,fanout,execute,track" "appIdSuffix" "" -}}
{{- $spec := merge (deepCopy $v.worker) $legacy (deepCopy (default dict $v.workerDefaults)) -}}
{{- $groups = append $groups (dict "name" "worker" "key" "worker" "spec" $spec) -}}
{{- else -}}
{{- range $name, $group := $v.workerGroups -}}
{{- if and $group (ne (toString $group.enabled) "false") -}}
{{- $spec := merge (deepCopy $group) (deepCopy (default dict $v.workerDefaults)) -}}
{{- $groups = append $groups (dict "name" $name "key" (printf "workerGroups.%s" $name) "spec" $spec) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $groups -}}
{{- end -}}

{{/*
A group's replicas, refused above the partition count of the topic that bounds each of its
roles (topicPartitions). Call with an entry of copytrader.workerGroups and "root" set.
*/}}
{{- define "copytrader.groupReplicas" -}}
{{- $root := .root -}}
{{- $key := .key -}}
{{- $replicas := int .spec.replicas -}}
{{- if lt $replicas 0 -}}
{{- fail (printf "%s.replicas must be >= 0" $key) -}}
{{- end -}}
{{- $topics := include "copytrader.roleTopics" . | fromJson -}}
{{- range $role := include "copytrader.roleList" .spec.roles | fromJsonArray -}}
{{- $topic := get $topics $role -}}
{{- if $topic -}}
{{- if not (hasKey $root.Values.topicPartitions $topic) -}}
{{- fail (printf "topicPartitions.%s is not set: it bounds %s.replicas (role %s)" $topic $key $role) -}}
{{- end -}}
{{- $partitions := int (index $root.Values.topicPartitions $topic) -}}
{{- if gt $replicas $partitions -}}
{{- fail (printf "%s.replicas=%d exceeds %d, the partition count of %s (read by role %s): extra replicas would get none of its partitions. Add partitions to %s first, then raise topicPartitions.%s." $key $replicas $partitions $topic $role $topic $topic) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $replicas -}}
{{- end -}}

{{/*
Checks that span several values; included once from the ConfigMap template.
Every copy role (ingest, fanout, execute, track) runs in exactly one process group, store in at
most one: a role in two groups (two consumer groups) would consume each record twice.
*/}}
{{- define "copytrader.validate" -}}
{{- if and .Values.web.enabled (gt (int .Values.web.replicas) 1) (not (or .Values.redis.url .Values.redis.existingSecret)) -}}
{{- fail "web.replicas > 1 needs Redis (redis.url or redis.existingSecret): Socket.IO pushes go through its message queue" -}}
{{- end -}}
{{- if not .Values.kafka.broker -}}
{{- fail "kafka.broker is required, e.g. kafka://kafka:9092" -}}
{{- end -}}
{{- $known := list "ingest" "fanout" "execute" "track" "store" "web" -}}
{{- $procs := list -}}
{{- range $g := include "copytrader.workerGroups" . | fromJsonArray -}}
{{- $key := $g.key -}}
{{- if and (ne $key "worker") (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $g.name)) -}}
{{- fail (printf "workerGroups.%s: a group name must be a DNS label (lower-case letters, digits, '-')" $g.name) -}}
{{- end -}}
{{- if and (ne $key "worker") (has $g.name (list "web" "metrics" "worker")) -}}
{{- fail (printf "workerGroups.%s: the names web, metrics and worker are taken (chart Services; worker is the legacy single-worker block)" $g.name) -}}
{{- end -}}
{{- $service := printf "%s-%s" (include "copytrader.fullname" $) $g.name -}}
{{- if gt (len $service) 63 -}}
{{- fail (printf "%s: the Service name %s is longer than the 63 characters of a DNS label: shorten the group name or fullnameOverride" $key $service) -}}
{{- end -}}
{{- $procs = append $procs (dict "key" $key "spec" $g.spec) -}}
{{- end -}}
{{- if .Values.web.enabled -}}
{{- $procs = append $procs (dict "key" "web" "spec" .Values.web) -}}
{{- end -}}
{{- $owners := dict -}}
{{- $ids := dict -}}
{{- range $p := $procs -}}
{{- $roles := include "copytrader.roleList" $p.spec.roles | fromJsonArray -}}
{{- if not $roles -}}
{{- fail (printf "%s.roles is empty" $p.key) -}}
{{- end -}}
{{- range $role := $roles -}}
{{- if not (has $role $known) -}}
{{- fail (printf "%s.roles: unknown role %s (known: %s)" $p.key $role (join "," $known)) -}}
{{- end -}}
{{- if and (eq $role "web") (ne $p.key "web") -}}
{{- fail (printf "%s.roles: the web role runs in the web Deployment (web.enabled), which has the dashboard Service" $p.key) -}}
{{- end -}}
{{- if hasKey $owners $role -}}
{{- fail (printf "role %s runs in both %s and %s: each role must run in exactly one group (one consumer group), or it would consume every record twice" $role (get $owners $role) $p.key) -}}
{{- end -}}
{{- $_ := set $owners $role $p.key -}}
{{- end -}}
{{- $id := printf "%s%s" $.Values.config.appId (default "" $p.spec.appIdSuffix) -}}
{{- if hasKey $ids $id -}}
{{- fail (printf "%s.appIdSuffix and %s.appIdSuffix give the same Faust app id %q: processes with different roles need their own app id (consumer group)" (get $ids $id) $p.key $id) -}}
{{- end -}}
{{- $_ := set $ids $id $p.key -}}
{{- end -}}
{{- range $role := list "ingest" "fanout" "execute" "track" -}}
{{- if not (hasKey $owners $role) -}}
{{- fail (printf "no enabled group runs role %s: every copy role must run in exactly one group (workerGroups.*.roles)" $role) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Pod template shared by the worker-group and web Deployments.
Call with (dict "root" $ "component" "front" "spec" $spec).
*/}}
{{- define "copytrader.podTemplate" -}}
{{- $root := .root -}}
{{- $spec := .spec -}}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "copytrader.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    {{- with $spec.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    checksum/accounts: {{ include (print $root.Template.BasePath "/configmap-accounts.yaml") $root | sha256sum }}
    {{- with $spec.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "copytrader.serviceAccountName" $root }}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: {{ $spec.terminationGracePeriodSeconds }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  containers:
    - name: {{ .component }}
      image: {{ include "copytrader.image" $root | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        {{- toYaml $spec.args | nindent 8 }}
      ports:
        - name: http
          containerPort: {{ $v.containerPort }}
          protocol: TCP
        - name: metrics
          containerPort: {{ $v.metrics.port }}
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "copytrader.fullname" $root }}-config
        {{- range $v.envFromSecrets }}
        - secretRef:
            name: {{ . }}
        {{- end }}
      env:
        - name: COPYTRADER_ROLES
          value: {{ $spec.roles | quote }}
        - name: COPYTRADER_APP_ID
          value: {{ printf "%s%s" $v.config.appId (default "" $spec.appIdSuffix) | quote }}
        {{- with $spec.adoptOffsetsFrom }}
        - name: COPYTRADER_ADOPT_OFFSETS_FROM
          value: {{ join "," . | replace "{appId}" $v.config.appId | quote }}
        {{- end }}
        - name: COPYTRADER_SECRET_KEY
          valueFrom:
            secretKeyRef:
              name: {{ include "copytrader.secretName" $root }}
              key: {{ $v.secret.key }}
        {{- if $v.database.existingSecret }}
        - name: COPYTRADER_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ $v.database.existingSecret }}
              key: {{ $v.database.existingSecretKey }}
        {{- end }}
        {{- if $v.redis.existingSecret }}
        - name: COPYTRADER_REDIS_URL
          valueFrom:
            secretKeyRef:
              name: {{ $v.redis.existingSecret }}
              key: {{ $v.redis.existingSecretKey }}
        {{- end }}
      startupProbe:
        httpGet:
          path: {{ $v.probes.startup.path }}
          port: http
        periodSeconds: {{ $v.probes.startup.periodSeconds }}
        failureThreshold: {{ $v.probes.startup.failureThreshold }}
        timeoutSeconds: {{ $v.probes.startup.timeoutSeconds }}
      livenessProbe:
        httpGet:
          path: {{ $v.probes.liveness.path }}
          port: http
        periodSeconds: {{ $v.probes.liveness.periodSeconds }}
        failureThreshold: {{ $v.probes.liveness.failureThreshold }}
        timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
      readinessProbe:
        httpGet:
          path: {{ $v.probes.readiness.path }}
          port: http
        periodSeconds: {{ $v.probes.readiness.periodSeconds }}
        failureThreshold: {{ $v.probes.readiness.failureThreshold }}
        timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
      resources:
        {{- toYaml $spec.resources | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - name: accounts
          mountPath: {{ $v.accounts.mountPath }}
          readOnly: true
        - name: data
          mountPath: /var/lib/copytrader
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: accounts
      configMap:
        name: {{ include "copytrader.accountsConfigMapName" $root }}
    - name: data
      emptyDir:
        sizeLimit: {{ $spec.dataVolume.sizeLimit }}
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
  {{- with $spec.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
