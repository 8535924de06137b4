#!/usr/bin/python3
"""Checks deploy/: every YAML file passes yamllint, and the fields that matter for running staved
are there and agree with each other (ports, the HTTP API's included, probes, drain timing, the
config mount, selectors).

usage: deploy_manifests_check.py DEPLOY_DIR   (exit 77 = skipped: yamllint or python3-yaml missing)
"""
import glob
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("skipped: python3-yaml missing (apt-get install yamllint)")
    sys.exit(77)

deploy = sys.argv[1]
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


files = sorted(glob.glob(os.path.join(deploy, "**", "*.yaml"), recursive=True))
check(files, f"no YAML files under {deploy}")
lint = subprocess.run(["yamllint", "-d", "{extends: default, rules: {line-length: {max: 120}, "
                       "document-start: disable, comments: {min-spaces-from-content: 1}}}", *files],
                      capture_output=True, text=True)
check(lint.returncode == 0, "yamllint:\n" + lint.stdout + lint.stderr)

k8s = os.path.join(deploy, "k8s")
docs = {}
for path in glob.glob(os.path.join(k8s, "*.yaml")):
    for doc in yaml.safe_load_all(open(path)):
        if doc and "kind" in doc and "metadata" in doc:
            docs[(doc["kind"], doc["metadata"]["name"])] = doc

kustomization = yaml.safe_load(open(os.path.join(k8s, "kustomization.yaml")))
listed = set(kustomization["resources"])
present = {os.path.basename(p) for p in glob.glob(os.path.join(k8s, "*.yaml"))} - {"kustomization.yaml"}
check(listed == present, f"kustomization resources {sorted(listed)} != files {sorted(present)}")

deployment = docs.get(("Deployment", "stave"))
check(deployment is not None, "Deployment stave missing")
if deployment:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    check(deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), "selector does not match pod labels")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container.get("args", [])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    listen = next((a for a in args if a.startswith("--listen=")), "")
    check(listen.endswith(f":{ports.get('grpc')}"), f"--listen {listen!r} is not the grpc port {ports.get('grpc')}")
    check(any(a.endswith(f":{ports.get('metrics')}") for a in args if a.startswith("--metrics-listen=")),
          "--metrics-listen is not the metrics port")
    check("http" in ports and any(a == f"--http-listen=0.0.0.0:{ports['http']}" for a in args),
          f"--http-listen must serve the http container port on every interface ({ports.get('http')})")
    for probe in ("readinessProbe", "livenessProbe"):
        check(container.get(probe, {}).get("grpc", {}).get("port") == ports.get("grpc"),
              f"{probe} must be a gRPC health probe on the grpc port")
    for kind in ("requests", "limits"):
        check({"cpu", "memory"} <= set(container.get("resources", {}).get(kind, {})), f"resources.{kind} incomplete")
    grace = int(next((a.split("=")[1] for a in args if a.startswith("--grace-seconds=")), 30))
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_s = int(pre_stop[-1]) if pre_stop and pre_stop[0] == "sleep" else 0
    check(pod.get("terminationGracePeriodSeconds", 30) > grace + pre_stop_s,
          f"terminationGracePeriodSeconds must exceed preStop ({pre_stop_s}) + --grace-seconds ({grace})")
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_arg = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
    check(config_arg is not None, "staved must get --config")
    config_volume = next((v for v in volumes.values() if "configMap" in v), None)
    check(config_volume is not None, "no ConfigMap volume")
    if config_arg and config_volume:
        mount = mounts[config_volume["name"]]
        check("subPath" not in mount, "a subPath mount never sees ConfigMap updates")
        check(os.path.dirname(config_arg) == mount["mountPath"], "--config is not in the ConfigMap mount")
        configmap = docs.get(("ConfigMap", config_volume["configMap"]["name"]))
        check(configmap is not None and os.path.basename(config_arg) in configmap["data"],
              "the ConfigMap does not hold the --config file")
        if configmap:
            position = yaml.safe_load(configmap["data"][os.path.basename(config_arg)])
            check(position.get("mode") in ("vanilla", "buckets", "moice"), "ConfigMap mode invalid")
    model = next((e["value"] for e in container.get("env", []) if e["name"] == "STAVE_MODEL"), None)
    model_volume = next((v for v in volumes.values() if "persistentVolumeClaim" in v), None)
    check(model_volume is not None, "the model is not on a volume")
    if model and model_volume:
        check(model.startswith(mounts[model_volume["name"]]["mountPath"] + "/"), "STAVE_MODEL is not on the model volume")
        check(("PersistentVolumeClaim", model_volume["persistentVolumeClaim"]["claimName"]) in docs, "PVC missing")

    services = [d for (k, _), d in docs.items() if k == "Service"]
    check(any(s["spec"].get("clusterIP") == "None" for s in services), "no headless Service")
    check(any(s["spec"].get("clusterIP") != "None" for s in services), "no regular Service")
    check(any(p["targetPort"] == "http" for s in services if s["spec"].get("clusterIP") != "None"
              for p in s["spec"]["ports"]), "the regular Service does not expose the HTTP API (targetPort http)")
    for s in services:
        check(s["spec"]["selector"].items() <= labels.items(), f"Service {s['metadata']['name']} selects no pod")
        for p in s["spec"]["ports"]:
            check(p["targetPort"] in ports, f"Service {s['metadata']['name']} targets unknown port {p['targetPort']}")
    hpa = next((d for (k, _), d in docs.items() if k == "HorizontalPodAutoscaler"), None)
    check(hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == "stave", "HPA missing or not on the Deployment")
    pdb = next((d for (k, _), d in docs.items() if k == "PodDisruptionBudget"), None)
    check(pdb is not None and pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "PDB missing or selects nothing")

compose = yaml.safe_load(open(os.path.join(deploy, "compose.yaml")))
replicas = [n for n in compose["services"] if n.startswith("staved")]
check(len(replicas) >= 2, "compose needs two staved replicas")
nginx = open(os.path.join(deploy, "nginx-grpc.conf")).read()
for name in replicas:
    check(re.search(rf"server\s+{name}:50051", nginx), f"nginx upstream lacks {name}")
check("grpc_pass" in nginx and "http2" in nginx, "nginx must proxy gRPC over HTTP/2")
# The HTTP API: every replica serves it, nginx balances it, the proxy publishes it.
for name in replicas:
    command = compose["services"][name].get("command", [])
    http_listen = next((a for a in command if a.startswith("--http-listen=")), "")
    check(http_listen.startswith("--http-listen=0.0.0.0:"), f"{name} does not serve the HTTP API on every interface")
    http_port = http_listen.rsplit(":", 1)[-1]
    check(re.search(rf"server\s+{name}:{http_port}\b", nginx), f"nginx HTTP upstream lacks {name}:{http_port}")
listens = re.findall(r"listen\s+(\d+)\s*;", nginx)
check(listens and "proxy_pass" in nginx and "proxy_buffering off" in nginx,
      "nginx must proxy the HTTP API unbuffered (server-sent events)")
published = [str(p).split(":")[-1] for p in compose["services"].get("proxy", {}).get("ports", [])]
check(all(port in published for port in listens), f"the proxy does not publish the HTTP port(s) {listens}")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print(f"ok: {len(files)} YAML files lint clean; manifests consistent")
