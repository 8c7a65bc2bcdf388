#!/usr/bin/env python3
"""Cross-checks of the rendered Kubernetes manifests against the gateway's config.

The schemas say whether a manifest is well-formed; this says whether it fits protogate:

- the ConfigMap the gateway mounts holds exactly config/protogate.toml;
- the gateway's `http` port, its Service's targetPort and every probe use the port of
  `listen` (or of PROTOGATE_LISTEN / --listen where a manifest overrides it);
- liveness is /healthz, readiness /readyz, and the startup probe /healthz (a sidecar
  whose startup probe waited for the upstream would never let the upstream start);
- terminationGracePeriodSeconds exceeds [server] drain_timeout plus every preStop sleep
  of the pod, so that a rolling update loses no request;
- a gateway in initContainers is a native sidecar (restartPolicy: Always);
- the gateway image has no shell: no exec probe or hook may run anything but the binary;
- every container runs non-root, read-only, without capabilities or privilege escalation,
  with CPU and memory requests and limits;
- every Service, PodDisruptionBudget and HorizontalPodAutoscaler points at a Deployment
  of the same render; a named upstream (http://NAME:PORT) is a Service of the render.

Usage: kubernetes-checks.py --config config/protogate.toml SHAPE=RENDERED.yaml ...
where SHAPE is `sidecar` or `shared`. `--self-test` also breaks each rendered manifest in
the ways above, one at a time, and fails unless every breakage is reported.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tomllib
from urllib.parse import urlsplit

import yaml

HEALTHZ = "/healthz"
READYZ = "/readyz"
CONFIG_DIR = "/etc/protogate"


def duration_seconds(text: str) -> float:
    """Parses a protogate duration: a number with ms, s, m or h."""
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    raise ValueError(f"{text!r} is not a duration")


def is_gateway(container: dict) -> bool:
    return container.get("name") == "protogate" or "protogate/gateway" in container.get("image", "")


def arg_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def env_value(container: dict, name: str) -> str | None:
    for entry in container.get("env", []):
        if entry.get("name") == name:
            return entry.get("value")
    return None


def port_number(port: str) -> int:
    return int(port.rsplit(":", 1)[1])


class Render:
    """One rendered kustomization: its documents, indexed."""

    def __init__(self, shape: str, docs: list[dict]):
        self.shape = shape
        self.docs = [d for d in docs if d]
        self.errors: list[str] = []

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d.get("kind") == kind]

    def named(self, kind: str, name: str) -> dict | None:
        return next((d for d in self.of_kind(kind) if d["metadata"]["name"] == name), None)

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{self.shape}: {where}: {message}")

    def selected(self, selector: dict) -> list[dict]:
        """Deployments whose pod labels match a label selector (matchLabels or a map)."""
        wanted = selector.get("matchLabels", selector)
        return [
            d
            for d in self.of_kind("Deployment")
            if wanted
            and all(
                d["spec"]["template"]["metadata"].get("labels", {}).get(k) == v
                for k, v in wanted.items()
            )
        ]


def container_port(pod: dict, port: int | str) -> int | None:
    """Resolves a probe or Service port (a number or a port name) against a pod spec."""
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        for p in c.get("ports", []):
            if port in (p.get("name"), p.get("containerPort")):
                return p["containerPort"]
    return None


def check_hardening(r: Render, where: str, pod: dict, c: dict) -> None:
    pod_sc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
        r.error(where, "runAsNonRoot must be true")
    if sc.get("runAsUser", pod_sc.get("runAsUser")) in (None, 0):
        r.error(where, "runAsUser must be set and not 0")
    if sc.get("readOnlyRootFilesystem") is not True:
        r.error(where, "readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        r.error(where, "allowPrivilegeEscalation must be false")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        r.error(where, "capabilities must drop ALL")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for name in ("cpu", "memory"):
            if name not in res.get(part, {}):
                r.error(where, f"resources.{part}.{name} is missing")


def check_gateway(
    r: Render, where: str, pod: dict, c: dict, sidecar: bool, config_text: str
) -> None:
    args = c.get("args", [])
    config_path = arg_value(args, "--config") or env_value(c, "PROTOGATE_CONFIG")
    if not config_path or not config_path.startswith(CONFIG_DIR + "/"):
        r.error(where, f"--config must name a file in {CONFIG_DIR}, got {config_path!r}")
        return
    mount = next((m for m in c.get("volumeMounts", []) if m.get("mountPath") == CONFIG_DIR), None)
    volume = mount and next(
        (v for v in pod.get("volumes", []) if v.get("name") == mount["name"]), None
    )
    cm_name = volume and volume.get("configMap", {}).get("name")
    cm = cm_name and r.named("ConfigMap", cm_name)
    key = config_path.rsplit("/", 1)[1]
    if not cm or key not in cm.get("data", {}):
        r.error(where, f"no ConfigMap with {key} is mounted at {CONFIG_DIR}")
        return
    text = cm["data"][key]
    if text != config_text:
        r.error(
            where,
            f"ConfigMap {cm_name} key {key} differs from config/protogate.toml"
            " (after a config change: cp config/protogate.toml deploy/kubernetes/base/)",
        )
    config = tomllib.loads(text)
    listen = arg_value(args, "--listen") or env_value(c, "PROTOGATE_LISTEN") or config.get("listen")
    if not listen:
        r.error(where, "no listen address in the config, --listen or PROTOGATE_LISTEN")
        return
    port = port_number(listen)
    if not any(p.get("containerPort") == port for p in c.get("ports", [])):
        r.error(where, f"no containerPort {port} (the port of listen = {listen!r})")
    expected = {"startupProbe": HEALTHZ, "livenessProbe": HEALTHZ, "readinessProbe": READYZ}
    for probe_name, path in expected.items():
        probe = c.get(probe_name)
        get = probe and probe.get("httpGet")
        if not get:
            r.error(where, f"{probe_name} must be an httpGet of {path}")
            continue
        if get.get("path") != path:
            r.error(where, f"{probe_name} asks {get.get('path')!r}, want {path!r}")
        if container_port(pod, get.get("port")) != port:
            r.error(where, f"{probe_name} port {get.get('port')!r} is not the listen port {port}")
    for hook, spec in [(n, c.get(n)) for n in expected] + [
        ("preStop", c.get("lifecycle", {}).get("preStop"))
    ]:
        command = (spec or {}).get("exec", {}).get("command")
        if command and not command[0].endswith("/protogate"):
            r.error(
                where, f"{hook} runs {command[0]!r}, but the image holds only the protogate binary"
            )
    if sidecar and c.get("restartPolicy") != "Always":
        r.error(where, "a gateway in initContainers needs restartPolicy: Always (a native sidecar)")
    # 20s is the gateway's default (config/protogate.toml shows the defaults).
    drain = duration_seconds(config.get("server", {}).get("drain_timeout", "20s"))
    sleeps = sum(
        x.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        for x in pod.get("initContainers", []) + pod.get("containers", [])
    )
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not grace > drain + sleeps:
        r.error(
            where,
            f"terminationGracePeriodSeconds {grace} must exceed drain_timeout {drain:g}s"
            + (f" plus the preStop sleeps ({sleeps}s)" if sleeps else ""),
        )
    upstream = (
        arg_value(args, "--upstream")
        or env_value(c, "PROTOGATE_UPSTREAM")
        or config.get("upstream", {}).get("url", "")
    )
    host, up_port = urlsplit(upstream).hostname, urlsplit(upstream).port
    if sidecar and host not in ("127.0.0.1", "localhost", "::1"):
        r.error(where, f"a sidecar's upstream should be loopback, got {upstream}")
    if not sidecar:
        svc = r.named("Service", (host or "").split(".")[0])
        if not svc or not any(p.get("port") == up_port for p in svc["spec"].get("ports", [])):
            r.error(where, f"upstream {upstream} is not a Service port of this render")


def check(r: Render, config_text: str) -> list[str]:
    gateways = 0
    for dep in r.of_kind("Deployment"):
        pod = dep["spec"]["template"]["spec"]
        for sidecar, group in ((True, "initContainers"), (False, "containers")):
            for c in pod.get(group, []):
                where = f"Deployment {dep['metadata']['name']} {group} {c.get('name')}"
                check_hardening(r, where, pod, c)
                if is_gateway(c):
                    gateways += 1
                    if sidecar != (r.shape == "sidecar"):
                        want = "initContainers" if r.shape == "sidecar" else "containers"
                        r.error(where, f"the {r.shape} shape wants the gateway in {want}")
                    check_gateway(r, where, pod, c, sidecar, config_text)
    if not gateways:
        r.error("render", "no protogate container found")
    for svc in r.of_kind("Service"):
        where = f"Service {svc['metadata']['name']}"
        deps = r.selected(svc["spec"].get("selector", {}))
        if not deps:
            r.error(where, "selects no Deployment of this render")
        for dep in deps:
            for p in svc["spec"].get("ports", []):
                target = p.get("targetPort", p.get("port"))
                if container_port(dep["spec"]["template"]["spec"], target) is None:
                    name = dep["metadata"]["name"]
                    r.error(where, f"targetPort {target!r} is no container port of {name}")
    for pdb in r.of_kind("PodDisruptionBudget"):
        if not r.selected(pdb["spec"].get("selector", {})):
            r.error(
                f"PodDisruptionBudget {pdb['metadata']['name']}",
                "selects no Deployment of this render",
            )
    for hpa in r.of_kind("HorizontalPodAutoscaler"):
        where = f"HorizontalPodAutoscaler {hpa['metadata']['name']}"
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or not r.named("Deployment", ref.get("name")):
            r.error(
                where, f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not in this render"
            )
        if not any(
            m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"].get("metrics", [])
        ):
            r.error(where, "no cpu metric")
    return r.errors


# --- self-test: every breakage must be reported -------------------------------------------


def gateway_of(docs: list[dict]) -> tuple[dict, dict]:
    for d in docs:
        if d and d.get("kind") == "Deployment":
            pod = d["spec"]["template"]["spec"]
            for c in pod.get("initContainers", []) + pod.get("containers", []):
                if is_gateway(c):
                    return pod, c
    raise SystemExit("self-test: no gateway container")


DELETE = object()


def mutate(docs: list[dict], target: str, path: list, value: object) -> None:
    """Sets (or with DELETE removes) PATH under TARGET: the gateway container, its pod
    spec, or the first object of a kind."""
    if target in ("gateway", "pod"):
        node = gateway_of(docs)[0 if target == "pod" else 1]
    else:
        node = next(d for d in docs if d and d.get("kind") == target)
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        node.pop(path[-1])
    else:
        node[path[-1]] = value


NOPE = {"matchLabels": {"app": "nope"}}
LISTEN_9000 = [{"name": "PROTOGATE_LISTEN", "value": "0.0.0.0:9000"}]
# (what is broken, a phrase the report must contain, target, path, new value)
BREAKAGES = [
    ("liveness on the wrong path", "livenessProbe asks", "gateway",
     ["livenessProbe", "httpGet", "path"], "/health"),
    ("readiness on another port", "readinessProbe port", "gateway",
     ["readinessProbe", "httpGet", "port"], 9090),
    ("startup probe on /readyz", "startupProbe asks", "gateway",
     ["startupProbe", "httpGet", "path"], READYZ),
    ("http port not the listen port", "no containerPort", "gateway",
     ["ports", 0, "containerPort"], 8081),
    ("listen overridden to another port", "is not the listen port", "gateway",
     ["env"], LISTEN_9000),
    ("grace period at drain_timeout", "terminationGracePeriodSeconds", "pod",
     ["terminationGracePeriodSeconds"], 20),
    ("writable root filesystem", "readOnlyRootFilesystem", "gateway",
     ["securityContext", "readOnlyRootFilesystem"], False),
    ("capabilities kept", "drop ALL", "gateway", ["securityContext", "capabilities"], {}),
    ("no memory limit", "limits.memory", "gateway", ["resources", "limits", "memory"], DELETE),
    ("a shell in an exec probe", "holds only the protogate binary", "gateway",
     ["livenessProbe"], {"exec": {"command": ["sh", "-c", "true"]}}),
    ("config drifted from config/protogate.toml", "differs from config/protogate.toml",
     "ConfigMap", ["data", "protogate.toml"], "listen = \"0.0.0.0:8080\"\n"),
    ("Service to a port nobody has", "targetPort", "Service",
     ["spec", "ports", 0, "targetPort"], "nope"),
    ("HPA on a missing Deployment", "scaleTargetRef", "HorizontalPodAutoscaler",
     ["spec", "scaleTargetRef", "name"], "nope"),
    ("PDB selecting nothing", "PodDisruptionBudget", "PodDisruptionBudget",
     ["spec", "selector"], NOPE),
]  # fmt: skip
SIDECAR_ONLY = [
    ("sidecar without restartPolicy: Always", "restartPolicy: Always", "gateway",
     ["restartPolicy"], DELETE),
]  # fmt: skip
SHARED_ONLY = [
    ("upstream name that is no Service", "not a Service port", "gateway",
     ["env"], [{"name": "PROTOGATE_UPSTREAM", "value": "http://nope:50051"}]),
]  # fmt: skip


def self_test(shape: str, docs: list[dict], config_text: str) -> int:
    failures = 0
    extra = SIDECAR_ONLY if shape == "sidecar" else SHARED_ONLY
    for label, needle, target, path, value in BREAKAGES + extra:
        broken = copy.deepcopy(docs)
        mutate(broken, target, path, value)
        errors = check(Render(shape, broken), config_text)
        if any(needle in e for e in errors):
            print(f"ok   {shape}: caught {label}")
        else:
            failures += 1
            print(f"FAIL {shape}: {label} went unreported (errors: {errors})")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="config/protogate.toml")
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("renders", nargs="+", metavar="SHAPE=FILE")
    opts = parser.parse_args()
    with open(opts.config, encoding="utf-8") as f:
        config_text = f.read()
    failures = 0
    for item in opts.renders:
        shape, path = item.split("=", 1)
        if shape not in ("sidecar", "shared"):
            parser.error(f"shape must be sidecar or shared, got {shape!r}")
        with open(path, encoding="utf-8") as f:
            docs = list(yaml.safe_load_all(f))
        errors = check(Render(shape, copy.deepcopy(docs)), config_text)
        for e in errors:
            print(f"FAIL {e}")
        if not errors:
            agree = "probes, ports, grace period, config and hardening agree with"
            print(f"ok   {shape}: {agree} {opts.config}")
        failures += len(errors)
        if opts.self_test:
            failures += self_test(shape, docs, config_text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
