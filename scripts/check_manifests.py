#!/usr/bin/env python3
"""Offline checks of the deployment files, for machines with no cluster and no Docker.

1. Schemas: every Kubernetes object against the upstream OpenAPI schemas
   (kubernetes-validate), every Istio object against its CRD schema, the
   Compose file against the Compose Specification (k8s/schemas, docker/schemas).
2. Cross-references no schema can see: Services select pods and name their
   ports, URLs in env vars name Services and ports that exist, Istio resources
   name real hosts, subsets, gateways and service accounts, images are the ones
   `make docker-build` produces, probes hit paths the services serve, and the
   Dockerfile builds binaries that exist.
3. The telemetry pipeline (Compose files in docker/observability/, the same
   configuration in ConfigMaps in k8s/): the collector's pipelines name
   receivers, processors, connectors and exporters that are defined, every
   connector both ends a pipeline and starts one, exporters point at services
   that exist; Jaeger's metrics backend is the Prometheus service; Prometheus
   scrapes targets that exist, the collector's among them; mounted config
   files and ConfigMaps exist.

Usage: scripts/check-manifests.sh [--self-test]   (prints problems, exits 1 on any)
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
K8S_VERSION = "1.34.0"
# Paths every service of the suite serves (crates/service-kit/src/health.rs).
PROBE_PATHS = {"/healthz", "/readyz"}
# Service accounts Istio itself installs; the manifests may name them.
ISTIO_ACCOUNTS = {("istio-system", "istio-ingressgateway-service-account")}
# Env vars that name another component, as a URL or as host:port.
ADDRESS_VARS = re.compile(r"(_URL|_ENDPOINT|^KAFKA_BOOTSTRAP_SERVERS)$")
NOT_DEPLOYED = ("schemas/", "faults/", "istio/istio-operator.yaml")
OBSERVABILITY = ROOT / "docker" / "observability"
# Collector configuration sections a pipeline may name, by pipeline field.
PIPELINE_FIELDS = {"receivers": ("receivers", "connectors"), "processors": ("processors",), "exporters": ("exporters", "connectors")}


def load_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        relative = path.relative_to(K8S).as_posix()
        if relative.startswith("schemas/"):
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((relative, doc))
    return docs


def namespace(doc: dict) -> str:
    return doc.get("metadata", {}).get("namespace", "default")


def name(doc: dict) -> str:
    return doc.get("metadata", {}).get("name", "")


class Manifests:
    """The parsed manifests and Compose file, indexed for cross-reference checks."""

    def __init__(self, docs: list[tuple[str, dict]], compose: dict, images: set[str], binaries: set[str],
                 files: dict[str, dict] | None = None):
        self.docs = docs
        self.compose = compose
        self.images = images
        self.binaries = binaries
        # Compose's mounted config files, parsed, by path relative to docker/.
        self.files = files or {}
        # ConfigMap entries holding YAML, parsed, by (namespace, name, key).
        self.config_maps = {
            (namespace(doc), name(doc), key): yaml.safe_load(value)
            for _, doc in docs if doc.get("kind") == "ConfigMap"
            for key, value in doc.get("data", {}).items() if key.endswith((".yaml", ".yml"))
        }
        self.problems: list[str] = []

    def kind(self, kind: str) -> list[tuple[str, dict]]:
        return [(path, doc) for path, doc in self.docs if doc.get("kind") == kind]

    def workloads(self) -> list[tuple[str, dict]]:
        return self.kind("Deployment") + self.kind("StatefulSet") + self.kind("Job")

    def services(self) -> dict[tuple[str, str], dict]:
        return {(namespace(doc), name(doc)): doc for _, doc in self.kind("Service")}

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # -- schemas ---------------------------------------------------------------

    def check_schemas(self) -> None:
        for path, doc in self.docs:
            where = f"k8s/{path} {doc.get('kind')}/{name(doc)}"
            api = doc.get("apiVersion", "")
            group, _, version = api.rpartition("/")
            if doc.get("kind") in ("Kustomization", "IstioOperator"):
                continue  # checked by hand below: no published schema ships offline
            if group.endswith(".istio.io"):
                schema = K8S / "schemas" / "istio" / group / f"{doc['kind'].lower()}_{version}.json"
                if not schema.exists():
                    self.problem(where, f"no schema for {api} {doc['kind']} in k8s/schemas")
                    continue
                for error in jsonschema.Draft7Validator(json.loads(schema.read_text())).iter_errors(doc):
                    self.problem(where, f"{'/'.join(map(str, error.absolute_path))}: {error.message}")
            else:
                try:
                    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
                except kubernetes_validate.ValidationError as error:
                    self.problem(where, f"{'/'.join(map(str, error.path))}: {error.message}")
                except kubernetes_validate.SchemaNotFoundError:
                    self.problem(where, f"unknown kind {api} {doc.get('kind')}")
        schema = json.loads((ROOT / "docker" / "schemas" / "compose-spec.json").read_text())
        for error in jsonschema.Draft7Validator(schema).iter_errors(self.compose):
            self.problem("docker/compose.yaml", f"{'/'.join(map(str, error.absolute_path))}: {error.message}")

    # -- Kubernetes cross-references -----------------------------------------

    def check_kustomization(self) -> None:
        listed = set()
        for path, doc in self.kind("Kustomization"):
            for resource in doc.get("resources", []):
                listed.add(resource)
                if not (K8S / resource).exists():
                    self.problem(f"k8s/{path}", f"lists {resource}, which does not exist")
        for path in {path for path, _ in self.docs}:
            if path != "kustomization.yaml" and not path.startswith(NOT_DEPLOYED) and path not in listed:
                self.problem("k8s/kustomization.yaml", f"does not list {path}")

    def pods_selected(self, ns: str, selector: dict) -> list[dict]:
        return [
            doc["spec"]["template"]
            for _, doc in self.workloads()
            if namespace(doc) == ns and selector.items() <= doc["spec"]["template"]["metadata"].get("labels", {}).items()
        ]

    def check_services(self) -> None:
        for path, svc in self.kind("Service"):
            where = f"k8s/{path} Service/{name(svc)}"
            pods = self.pods_selected(namespace(svc), svc["spec"].get("selector", {}))
            if not pods:
                self.problem(where, f"selector {svc['spec'].get('selector')} matches no pod template")
                continue
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                container_ports = [p for pod in pods for c in pod["spec"]["containers"] for p in c.get("ports", [])]
                if not any(p.get("name") == target or p.get("containerPort") == target for p in container_ports):
                    self.problem(where, f"targetPort {target!r} is not a port of the selected containers")

    def resolve(self, host: str, port: int, ns: str) -> str | None:
        """Why host:port, seen from namespace ns, is not a Service port (None when it is)."""
        parts = host.split(".")
        svc_name, svc_ns = parts[0], parts[1] if len(parts) > 1 else ns
        if len(parts) > 2 and ".".join(parts[2:]) not in ("svc", "svc.cluster.local"):
            return f"{host} is not a cluster Service name"
        svc = self.services().get((svc_ns, svc_name))
        if svc is None:
            return f"no Service {svc_name} in namespace {svc_ns}"
        if port not in [p["port"] for p in svc["spec"]["ports"]]:
            return f"Service {svc_ns}/{svc_name} does not expose port {port}"
        return None

    def check_env_addresses(self) -> None:
        for path, workload in self.workloads():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                for var in container.get("env", []):
                    if not ADDRESS_VARS.search(var["name"]) or "value" not in var:
                        continue
                    where = f"k8s/{path} {name(workload)} {var['name']}"
                    for address in var["value"].split(","):
                        host, port = split_address(address)
                        if host is None:
                            self.problem(where, f"{address!r} is not host:port or a URL with a port")
                        elif why := self.resolve(host, port, namespace(workload)):
                            self.problem(where, why)

    def check_workloads(self) -> None:
        for path, workload in self.workloads():
            if namespace(workload) != "eshop":
                continue
            for container in workload["spec"]["template"]["spec"]["containers"]:
                where = f"k8s/{path} {name(workload)}"
                if container["image"] not in self.images:
                    self.problem(where, f"image {container['image']} is not one `make docker-build` produces")
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

    def host_service(self, host: str, ns: str) -> tuple[str, str] | None:
        parts = host.split(".")
        key = (parts[1] if len(parts) > 1 else ns, parts[0])
        return key if key in self.services() else None

    def check_istio(self) -> None:
        gateways = {(namespace(doc), name(doc)) for _, doc in self.kind("Gateway")}
        subsets = {}
        for path, rule in self.kind("DestinationRule"):
            where = f"k8s/{path} DestinationRule/{name(rule)}"
            key = self.host_service(rule["spec"]["host"], namespace(rule))
            if key is None:
                self.problem(where, f"host {rule['spec']['host']} is not a Service")
                continue
            for subset in rule["spec"].get("subsets", []):
                selector = {**self.services()[key]["spec"]["selector"], **subset.get("labels", {})}
                if not self.pods_selected(key[0], selector):
                    self.problem(where, f"subset {subset['name']} selects no pods")
                subsets.setdefault(key, set()).add(subset["name"])
        for path, vs in self.kind("VirtualService"):
            where = f"k8s/{path} VirtualService/{name(vs)}"
            for gateway in vs["spec"].get("gateways", []):
                if (namespace(vs), gateway) not in gateways:
                    self.problem(where, f"gateway {gateway} does not exist")
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
                    if "subset" in destination and destination["subset"] not in subsets.get(key, set()):
                        self.problem(where, f"subset {destination['subset']} of {destination['host']} is not defined")
                    port = destination.get("port", {}).get("number")
                    if port is not None and (why := self.resolve(key[1], port, key[0])):
                        self.problem(where, why)
        accounts = {(namespace(doc), name(doc)) for _, doc in self.kind("ServiceAccount")} | ISTIO_ACCOUNTS
        for path, policy in self.kind("AuthorizationPolicy"):
            where = f"k8s/{path} AuthorizationPolicy/{name(policy)}"
            selector = policy["spec"].get("selector", {}).get("matchLabels", {})
            if not self.pods_selected(namespace(policy), selector):
                self.problem(where, f"selector {selector} matches no pods")
            for rule in policy["spec"].get("rules", []):
                for source in rule.get("from", []):
                    for principal in source["source"].get("principals", []):
                        match = re.fullmatch(r"cluster\.local/ns/([^/]+)/sa/([^/]+)", principal)
                        if match is None or (match[1], match[2]) not in accounts:
                            self.problem(where, f"principal {principal} is not a known service account")

    def check_tracing_provider(self) -> None:
        operators = [doc for path, doc in self.docs if doc.get("kind") == "IstioOperator"]
        providers = {}
        for operator in operators:
            for provider in operator["spec"].get("meshConfig", {}).get("extensionProviders", []):
                providers[provider["name"]] = provider
        for path, telemetry in self.kind("Telemetry"):
            for tracing in telemetry["spec"].get("tracing", []):
                for provider in tracing.get("providers", []):
                    if provider["name"] not in providers:
                        self.problem(f"k8s/{path}", f"provider {provider['name']} is not in istio-operator.yaml's extensionProviders")
        for provider in providers.values():
            otel = provider.get("opentelemetry")
            if otel and (why := self.resolve(otel["service"], otel["port"], "istio-system")):
                self.problem("k8s/istio/istio-operator.yaml", f"provider {provider['name']}: {why}")

    # -- Compose and Dockerfile ------------------------------------------------

    def check_compose(self) -> None:
        services = self.compose.get("services", {})
        for svc_name, svc in services.items():
            where = f"docker/compose.yaml {svc_name}"
            if "build" in svc:
                if svc.get("image") not in self.images:
                    self.problem(where, f"image {svc.get('image')} is not one `make docker-build` produces")
                if svc["build"].get("target") not in self.binaries:
                    self.problem(where, f"build target {svc['build'].get('target')} is not a binary of the workspace")
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

    def check_jaeger(self, where: str, config: dict, resolve) -> None:
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
            self.check_jaeger("docker/" + compose_files["jaeger"], jaeger, self.compose_resolve)
        prometheus = self.files.get(compose_files["prometheus"])
        if prometheus is not None:
            self.check_prometheus("docker/" + compose_files["prometheus"], prometheus, self.compose_resolve, "otel-collector")

        k8s = lambda host, port: self.resolve(host, port, "observability")
        wanted = {
            ("observability", "otel-collector", "config.yaml"): lambda where, c: self.check_collector(where, c, k8s),
            ("observability", "jaeger-config", "config.yaml"): lambda where, c: self.check_jaeger(where, c, k8s),
            ("observability", "prometheus", "prometheus.yml"): lambda where, c: self.check_prometheus(where, c, k8s, "otel-collector"),
        }
        for (ns, config_map, key), check in wanted.items():
            config = self.config_maps.get((ns, config_map, key))
            where = f"k8s ConfigMap {ns}/{config_map} {key}"
            if config is None:
                self.problem(where, "does not exist")
            else:
                check(where, config)
        config_maps = {(ns, cm) for ns, cm, _ in self.config_maps}
        for path, workload in self.workloads():
            for volume in workload["spec"]["template"]["spec"].get("volumes", []):
                cm = volume.get("configMap", {}).get("name")
                if cm is not None and (namespace(workload), cm) not in config_maps:
                    self.problem(f"k8s/{path} {name(workload)}", f"mounts ConfigMap {cm}, which does not exist")

    def run(self) -> list[str]:
        self.check_schemas()
        self.check_kustomization()
        self.check_services()
        self.check_env_addresses()
        self.check_workloads()
        self.check_istio()
        self.check_tracing_provider()
        self.check_compose()
        self.check_dockerfile()
        self.check_observability()
        return self.problems


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


def docker_images() -> set[str]:
    output = subprocess.run(["make", "-s", "images"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return set(output.split())


def self_test(baseline: Manifests) -> list[str]:
    """Breaks the files in known ways; each break must be reported."""
    def mutate(edit) -> Manifests:
        broken = copy.deepcopy(baseline)
        broken.problems = []
        edit(broken)
        return broken

    def find(m: Manifests, kind: str, wanted: str) -> dict:
        return next(doc for _, doc in m.docs if doc.get("kind") == kind and name(doc) == wanted)

    def env(m: Manifests, workload: str, var: str, value: str) -> None:
        container = find(m, "Deployment", workload)["spec"]["template"]["spec"]["containers"][0]
        next(e for e in container["env"] if e["name"] == var)["value"] = value

    breaks = {
        "Service targetPort renamed": lambda m: find(m, "Service", "billing")["spec"]["ports"][0].update(targetPort="web"),
        "Service selector typo": lambda m: find(m, "Service", "inventory")["spec"].update(selector={"app": "inventroy"}),
        "URL to a missing Service": lambda m: env(m, "eshop-v1", "INVENTORY_URL", "http://inventroy:8080"),
        "URL to a port not exposed": lambda m: env(m, "kafka-consumer-v1", "NOTIFICATION_URL", "http://notification:9090"),
        "Kafka in another namespace": lambda m: env(m, "eshop-v1", "KAFKA_BOOTSTRAP_SERVERS", "kafka.eshop.svc.cluster.local:9092"),
        "unknown principal": lambda m: find(m, "AuthorizationPolicy", "notification")["spec"]["rules"][0]["from"][0]["source"].update(principals=["cluster.local/ns/eshop/sa/nobody"]),
        "image not built": lambda m: find(m, "Deployment", "delivery-v1")["spec"]["template"]["spec"]["containers"][0].update(image="eshop-tracing/delivery:9.9.9"),
        "probe path not served": lambda m: find(m, "Deployment", "billing-v1")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"].update(path="/ready"),
        "schema: replicas as text": lambda m: find(m, "Deployment", "eshop-v1")["spec"].update(replicas="one"),
        "Istio schema: mtls mode": lambda m: find(m, "PeerAuthentication", "default")["spec"]["mtls"].update(mode="ALWAYS"),
        "VirtualService subset": lambda m: find(m, "VirtualService", "eshop")["spec"]["http"][0]["route"][0]["destination"].update(subset="v2"),
        "Compose URL": lambda m: m.compose["services"]["eshop"]["environment"].update(BILLING_URL="http://biling:8080"),
        "Compose schema": lambda m: m.compose["services"]["eshop"].update(ports="8080"),
        "collector exporter undefined": lambda m: m.files["observability/otel-collector.yaml"]["service"]["pipelines"]["traces"]["exporters"].append("zipkin"),
        "collector connector unused": lambda m: m.config_maps[("observability", "otel-collector", "config.yaml")]["service"]["pipelines"]["metrics"].update(receivers=["otlp"]),
        "collector exporter to a missing Service": lambda m: m.config_maps[("observability", "otel-collector", "config.yaml")]["exporters"]["otlp/jaeger"].update(endpoint="jaeger.observability.svc.cluster.local:4317"),
        "Jaeger metrics not on Prometheus": lambda m: m.config_maps[("observability", "jaeger-config", "config.yaml")]["extensions"]["jaeger_storage"]["metric_backends"]["prometheus_store"]["prometheus"].update(endpoint="http://prometheus.observability.svc.cluster.local:9091"),
        "Compose Jaeger without metrics": lambda m: m.files["observability/jaeger.yaml"]["extensions"]["jaeger_query"]["storage"].pop("metrics"),
        "Prometheus target missing": lambda m: m.files["observability/prometheus.yml"]["scrape_configs"][0]["static_configs"][0].update(targets=["otel-collector:8890"]),
        "ConfigMap not found": lambda m: find(m, "Deployment", "jaeger")["spec"]["template"]["spec"]["volumes"][0]["configMap"].update(name="jaeger-cfg"),
    }
    failures = []
    for label, edit in breaks.items():
        if not mutate(edit).run():
            failures.append(f"self-test: breaking '{label}' was not reported")
    return failures


def main() -> int:
    files = {path.relative_to(COMPOSE.parent).as_posix(): yaml.safe_load(path.read_text())
             for path in sorted(OBSERVABILITY.glob("*.y*ml"))}
    manifests = Manifests(load_documents(), yaml.safe_load(COMPOSE.read_text()), docker_images(), workspace_binaries(), files)
    pristine = copy.deepcopy(manifests)
    problems = manifests.run()
    if "--self-test" in sys.argv[1:] and not problems:
        problems = self_test(pristine)
    for problem in problems:
        print(problem)
    kinds = sorted({doc.get("kind") for _, doc in manifests.docs})
    print(f"{'FAILED' if problems else 'ok'}: {len(manifests.docs)} Kubernetes/Istio objects ({', '.join(kinds)}), "
          f"{len(manifests.compose.get('services', {}))} Compose services, {len(files)} Compose config files, docker/Dockerfile; {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
