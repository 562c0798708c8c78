#!/usr/bin/env bash
# The Procfile is the one list of process types. heroku.yml is generated from it
# (scripts/heroku-yml --check) and must parse as YAML to what Heroku reads: build.docker.web
# and, per process type, the Procfile's command on the web image. The Kubernetes manifests
# must run a Deployment and a headless Service per process type.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import yaml' 2>/dev/null || {
    echo "FAIL: $PYTHON cannot import yaml (scripts/install-deps installs python3-yaml)"
    exit 1
}

"$root/scripts/heroku-yml" --check

"$PYTHON" - "$root" <<'PY'
import os, re, sys, yaml

root = sys.argv[1]
procfile = {}
for line in open(os.path.join(root, "Procfile")):
    m = re.match(r"^([A-Za-z0-9_-]+):\s*(.*?)\s*$", line)
    if m:
        procfile[m.group(1)] = m.group(2)

def fail(why):
    sys.exit("FAIL: " + why)

h = yaml.safe_load(open(os.path.join(root, "heroku.yml")))
if h.get("build", {}).get("docker", {}).get("web") != "Dockerfile":
    fail("heroku.yml: build.docker.web is not Dockerfile")
if not os.path.exists(os.path.join(root, "Dockerfile")):
    fail("no Dockerfile")
run = h.get("run", {})
if list(run) != list(procfile):
    fail("heroku.yml run: %s, Procfile: %s" % (list(run), list(procfile)))
for t, entry in run.items():
    if isinstance(entry, str):
        cmd, image = entry, "web"
    else:
        cmd, image = entry["command"], entry.get("image")
        if not (isinstance(cmd, list) and len(cmd) == 1):
            fail("heroku.yml run.%s.command is not one command" % t)
        cmd = cmd[0]
    if cmd != procfile[t] or image != "web":
        fail("heroku.yml run.%s: %r on image %r, Procfile: %r" % (t, cmd, image, procfile[t]))
print("ok   heroku.yml runs the Procfile's %d process types on the web image: %s" % (len(run), " ".join(run)))

k8s = os.path.join(root, "deploy", "kubernetes")
kust = yaml.safe_load(open(os.path.join(k8s, "kustomization.yaml")))
docs = []
for f in kust["resources"]:
    docs += [d for d in yaml.safe_load_all(open(os.path.join(k8s, f))) if d]
deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
config = next(d for d in docs if d["kind"] == "ConfigMap")
discovered = config["data"]["CHAT_DISCOVERY"].split(",")
for t in procfile:
    d = deployments.get("chat-" + t)
    s = services.get("chat-" + t)
    if d is None or s is None:
        fail("deploy/kubernetes: no Deployment or Service chat-%s" % t)
    if s["spec"].get("clusterIP") != "None":
        fail("deploy/kubernetes: Service chat-%s is not headless" % t)
    if s["spec"]["selector"] != d["spec"]["template"]["metadata"]["labels"]:
        fail("deploy/kubernetes: Service chat-%s does not select its Deployment's pods" % t)
    if "chat-" + t not in discovered:
        fail("deploy/kubernetes: CHAT_DISCOVERY does not list chat-%s" % t)
    c = d["spec"]["template"]["spec"]["containers"][0]
    if "%s@$(POD_IP)" % t not in c.get("args", []):
        fail("deploy/kubernetes: chat-%s does not name its node %s@$(POD_IP)" % (t, t))
    if not d["spec"]["template"]["spec"]["securityContext"].get("runAsNonRoot"):
        fail("deploy/kubernetes: chat-%s may run as root" % t)
print("ok   deploy/kubernetes: a Deployment and a headless Service per process type, all discovered")
PY
echo "PASS manifests"
