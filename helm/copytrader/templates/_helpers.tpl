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
Worker replicas, refused above maxWorkers: a Faust worker beyond the partition count of the
smallest input topic (trade.signals, 3 partitions) is assigned none of it and only adds
rebalances.
*/}}
{{- define "copytrader.workerReplicas" -}}
{{- $replicas := int .Values.worker.replicas -}}
{{- $max := int .Values.maxWorkers -}}
{{- if gt $replicas $max -}}
{{- fail (printf "worker.replicas=%d exceeds maxWorkers=%d, the partition count of the smallest input topic (trade.signals): extra workers would get none of its partitions. Add partitions to trade.signals first, then raise maxWorkers." $replicas $max) -}}
{{- end -}}
{{- if lt $replicas 0 -}}
{{- fail "worker.replicas must be >= 0" -}}
{{- end -}}
{{- $replicas -}}
{{- end -}}

{{/* Checks that span several values; included once from the ConfigMap template. */}}
{{- define "copytrader.validate" -}}
{{- if and .Values.web.enabled (gt (int .Values.web.replicas) 1) (not (or .Values.redis.url .Values.redis.existingSecret)) -}}
{{- fail "web.replicas > 1 needs Redis (redis.url or redis.existingSecret): Socket.IO pushes go through its message queue" -}}
{{- end -}}
{{- if and .Values.web.enabled (eq (toString .Values.worker.appIdSuffix) (toString .Values.web.appIdSuffix)) -}}
{{- fail "worker.appIdSuffix and web.appIdSuffix must differ: processes with different roles need their own Faust app id (consumer group)" -}}
{{- end -}}
{{- if not .Values.kafka.broker -}}
{{- fail "kafka.broker is required, e.g. kafka://kafka:9092" -}}
{{- end -}}
{{- end -}}

{{/*
Pod template shared by the worker and web Deployments.
Call with (dict "root" $ "component" "worker" "spec" .Values.worker).
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
