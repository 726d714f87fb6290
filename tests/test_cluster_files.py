"""cluster/: the launcher YAMLs pass Ray's own config schema, the KubeRay manifests the
CRD fields they use, and everything they reference (entry point, image, paths,
resources, secrets) exists and fits the sweep they are sized for."""

import copy
import math
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

from kuberay_schema import SCHEMAS
from rllib_metamapg import __version__
from rllib_metamapg.cli import build_parser
from rllib_metamapg.sweep.command import spec_from_args
from rllib_metamapg.sweep.plan import plan_sweep

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
LAUNCHERS = ["aws-gpu.yaml", "aws-cpu.yaml"]
MANIFESTS = ["raycluster.yaml", "rayjob.yaml", "results-pvc.yaml"]
IMAGE = f"rllib-metamapg:{__version__}"


def _load(path):
    return yaml.safe_load(path.read_text())


def _quantity(value) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _rayjob_sweep():
    """The sweep the RayJob runs, parsed by our own CLI and planned (tuned examples found)."""
    entry = _load(CLUSTER / "kuberay" / "rayjob.yaml")["spec"]["entrypoint"]
    argv = shlex.split(entry)
    assert argv[:4] == ["python", "-m", "rllib_metamapg.cli", "sweep"]
    args = build_parser().parse_args(argv[3:])
    spec = spec_from_args(args)
    plan_sweep(spec)
    return args


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_yaml_passes_rays_schema_and_references_what_exists(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load(CLUSTER / name)
    validate_config(prepare_config(copy.deepcopy(config)))
    gpu = name == "aws-gpu.yaml"
    assert config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311" + (
        "-gpu" if gpu else "")
    # The checkout is synced from the repository root; the token from a local file.
    mounts = config["file_mounts"]
    assert mounts["/home/ray/rllib-metamapg"] == "." and (ROOT / "setup.cfg").is_file()
    assert mounts["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    setup = " ".join(config["setup_commands"])
    assert "/home/ray/rllib-metamapg/constraints.txt" in setup
    extras = re.search(r"\[([a-z,]+)\]", setup).group(1).split(",")
    cfg = (ROOT / "setup.cfg").read_text()
    assert all(re.search(rf"^{e} =$", cfg, re.M) for e in extras), extras
    for commands in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert "RAY_AUTH_MODE=token" in config[commands][-1]
    # Capacity for the paper's 12 concurrent trials at the RayJob's per-trial resources.
    sweep = _rayjob_sweep()
    workers = [t for n, t in config["available_node_types"].items()
               if n != config["head_node_type"]]
    cpus = sum(t["resources"]["CPU"] * t["max_workers"] for t in workers)
    assert cpus >= sweep.max_concurrent * sweep.cpus_per_trial
    if gpu:
        gpus = max(t["resources"].get("GPU", 0) for t in workers)  # one node holds the sweep
        assert gpus >= math.ceil(sweep.max_concurrent * sweep.gpus_per_trial)
    assert config["available_node_types"][config["head_node_type"]]["resources"]["CPU"] == 0


@pytest.mark.parametrize("name", MANIFESTS)
def test_kuberay_manifests_match_the_crd_fields_they_use(name):
    doc = _load(CLUSTER / "kuberay" / name)
    jsonschema.validate(doc, SCHEMAS[doc["kind"]])


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}), "num-cpus"),
    (lambda s: s["workerGroupSpecs"][0].update({"maxReplica": 2}), "maxReplica"),
    (lambda s: s["workerGroupSpecs"][0].pop("groupName"), "groupName"),
    (lambda s: s["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]
     ["limits"].update({"cpu": "four"}), "four"),
])
def test_the_schema_rejects_what_the_api_server_would(mutate, field):
    doc = _load(CLUSTER / "kuberay" / "raycluster.yaml")
    mutate(doc["spec"])
    with pytest.raises(jsonschema.ValidationError, match=field):
        jsonschema.validate(doc, SCHEMAS["RayCluster"])


def _containers(spec):
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def test_kuberay_cluster_fits_the_sweep_and_uses_the_project_image():
    cluster = _load(CLUSTER / "kuberay" / "raycluster.yaml")["spec"]
    job = _load(CLUSTER / "kuberay" / "rayjob.yaml")["spec"]
    assert job["rayClusterSpec"] == cluster  # one cluster shape, two ways to run it
    assert cluster["rayVersion"] == ray.__version__
    submitter = job["submitterPodTemplate"]["spec"]["containers"]
    for c in _containers(cluster) + submitter:
        assert c["image"] == IMAGE
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{ray.__version__}-py311-gpu" in dockerfile
    assert f"-t {IMAGE} ." in dockerfile and (ROOT / ".dockerignore").is_file()

    sweep = _rayjob_sweep()
    assert sweep.gpus_per_trial == 0.33 and sweep.max_concurrent == 12
    assert sweep.resume_if_exists  # a retried RayJob continues the same sweep
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    worker = cluster["workerGroupSpecs"][0]
    limits = worker["template"]["spec"]["containers"][0]["resources"]["limits"]
    requests = worker["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert limits == requests
    assert _quantity(limits["nvidia.com/gpu"]) >= sweep.max_concurrent * sweep.gpus_per_trial
    assert _quantity(limits["cpu"]) >= sweep.max_concurrent * sweep.cpus_per_trial
    assert worker["replicas"] >= 1

    # Results go to the shared volume every pod mounts, which the PVC provides.
    pvc = _load(CLUSTER / "kuberay" / "results-pvc.yaml")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for g in groups:
        (volume,) = g["template"]["spec"]["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    for c in _containers(cluster):
        assert [m["mountPath"] for m in c["volumeMounts"]] == [sweep.storage_path]


def _env_vars(doc):
    if isinstance(doc, dict):
        if "name" in doc and ("value" in doc or "valueFrom" in doc):
            yield doc
        for v in doc.values():
            yield from _env_vars(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _env_vars(v)


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_token_auth_is_on_and_no_secret_is_written_down(name):
    doc = _load(CLUSTER / "kuberay" / name)
    env = list(_env_vars(doc))
    for var in env:
        if var["name"] == "RAY_AUTH_TOKEN":
            assert "value" not in var and var["valueFrom"]["secretKeyRef"] == {
                "name": "metamapg-ray-token", "key": "token"}
    for c in _containers(doc["spec"].get("rayClusterSpec", doc["spec"])):
        names = {v["name"]: v for v in c["env"]}
        assert names["RAY_AUTH_MODE"]["value"] == "token" and "RAY_AUTH_TOKEN" in names


def test_no_file_in_cluster_holds_a_token():
    for path in [*CLUSTER.rglob("*"), ROOT / ".dockerignore"]:
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"RAY_AUTH_TOKEN\s*[=:]\s*['\"]?[0-9a-f]{16,}", text), path
            assert not re.search(r"\b[0-9a-f]{32,}\b", text), path
