{{/* Names, labels and shared values. */}}

{{- define "ferryman.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ferryman.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ferryman.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels; call with (dict "ctx" $ "component" "operator"). */}}
{{- define "ferryman.labels" -}}
helm.sh/chart: {{ include "ferryman.chart" .ctx }}
{{ include "ferryman.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: ferryman
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ferryman.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferryman.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ferryman.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "ferryman.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferryman.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (printf "%s-gateway" (include "ferryman.fullname" .)) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferryman.worker.serviceAccountName" -}}
{{- if .Values.worker.serviceAccount.create }}
{{- default (printf "%s-worker" (include "ferryman.fullname" .)) .Values.worker.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.worker.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The NATS URL every component uses. */}}
{{- define "ferryman.natsUrl" -}}
{{- if .Values.nats.url }}
{{- .Values.nats.url }}
{{- else if .Values.nats.bundled.enabled }}
{{- printf "nats://%s-nats.%s.svc:4222" (include "ferryman.fullname" .) .Release.Namespace }}
{{- else }}
{{- fail "ferryman: set nats.url to your NATS server (2.14+, JetStream enabled), or nats.bundled.enabled=true for an evaluation server" }}
{{- end }}
{{- end }}

{{/* The Secret holding the database URL, or "" when there is none. */}}
{{- define "ferryman.databaseSecret" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else if .Values.postgresql.bundled.enabled }}
{{- printf "%s-database" (include "ferryman.fullname" .) }}
{{- end }}
{{- end }}

{{- define "ferryman.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}

{{/* Fail early on combinations that cannot work. */}}
{{- define "ferryman.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.peering.enabled) }}
{{- fail "ferryman: operator.replicas > 1 needs operator.peering.enabled=true (otherwise every replica acts at once)" }}
{{- end }}
{{- if .Values.nats.bundled.enabled }}
{{- $tag := .Values.nats.bundled.image.tag | trimSuffix "-alpine" | trimSuffix "-scratch" }}
{{- if and (regexMatch "^[0-9]+\\.[0-9]+(\\.[0-9]+)?$" $tag) (semverCompare "<2.14.0-0" $tag) }}
{{- fail (printf "ferryman: nats.bundled.image.tag %s is too old: JetStream message schedules need nats-server 2.14 or newer" .Values.nats.bundled.image.tag) }}
{{- end }}
{{- end }}
{{- if and .Values.gateway.enabled (not (include "ferryman.databaseSecret" .)) }}
{{- fail "ferryman: the gateway needs a database: set database.existingSecret (a Secret with FERRYMAN_DATABASE_URL) or postgresql.bundled.enabled=true" }}
{{- end }}
{{- end }}

{{/* The Secret with the gateway's bootstrap event key and operate token. */}}
{{- define "ferryman.gateway.authSecret" -}}
{{- .Values.gateway.auth.existingSecret | default (printf "%s-gateway-auth" (include "ferryman.fullname" .)) }}
{{- end }}

{{/* FERRYMAN_NATS_URL: from the bundled server's Secret (it has credentials), else nats.url. */}}
{{- define "ferryman.natsUrlEnv" -}}
- name: FERRYMAN_NATS_URL
{{- if and .Values.nats.bundled.enabled (not .Values.nats.url) }}
  valueFrom:
    secretKeyRef:
      name: {{ include "ferryman.fullname" . }}-nats
      key: FERRYMAN_NATS_URL
{{- else }}
  value: {{ include "ferryman.natsUrl" . | quote }}
{{- end }}
{{- end }}

{{/* A generated secret kept across upgrades: the value in an existing Secret, or a new one. */}}
{{- define "ferryman.keptSecret" -}}
{{- $existing := lookup "v1" "Secret" .namespace .name }}
{{- if and $existing (index $existing.data .key) }}
{{- index $existing.data .key | b64dec }}
{{- else }}
{{- printf "%s%s" (.prefix | default "") (randAlphaNum 40) }}
{{- end }}
{{- end }}
