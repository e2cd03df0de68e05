"""The deployment files against Ray's own schemas: cluster.yaml (the cluster launcher's
ray-schema.json, after the launcher's own default fill), deploy/serve_config.yaml and the
RayService's serveConfigV2 (Serve's ServeDeploySchema). tests/test_multinode.py deploys
serve_config.yaml for real with `serve deploy` on a 3-node cluster."""

from __future__ import annotations

import copy
import os

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.serve.schema import ServeDeploySchema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path: str) -> dict:
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def test_cluster_yaml_passes_the_cluster_launchers_schema():
    config = load("cluster.yaml")
    validate_config(prepare_config(copy.deepcopy(config)))
    types = config["available_node_types"]
    assert config["head_node_type"] in types and len(types) == 2
    assert types["worker"]["min_workers"] >= 2  # more than one node from the start


def test_the_schema_check_is_strict():
    config = load("cluster.yaml")
    config["available_node_types"]["worker"]["node_confg"] = {}  # a typo must not pass
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))


def test_cluster_yaml_installs_the_project_and_starts_the_service_with_the_env_dsn():
    config = load("cluster.yaml")
    assert config["file_mounts"]["~/actorlog"] == "."
    assert any("pip install" in c and "-e ~/actorlog" in c for c in config["setup_commands"])
    head = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in head and "serve deploy deploy/serve_config.yaml" in head
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        start = next(c for c in commands if "ray start" in c)
        assert ". ~/actorlog.env" in start  # ACTORLOG_STORE_URL reaches every raylet
    assert "deploy/cluster.env" in open(os.path.join(ROOT, ".gitignore")).read()


def test_serve_config_passes_serves_schema():
    schema = ServeDeploySchema.model_validate(load("deploy/serve_config.yaml"))
    (app,) = schema.applications
    assert app.import_path == "serve_app:app"
    (ingress,) = app.deployments
    assert ingress.num_replicas >= 2 and ingress.max_replicas_per_node == 1


def test_the_rayservice_serves_the_same_application():
    service = load("deploy/rayservice.yaml")
    assert service["kind"] == "RayService"
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(embedded)
    assert embedded == load("deploy/serve_config.yaml")
    cluster = service["spec"]["rayClusterConfig"]
    for spec in [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]:
        (container,) = spec["template"]["spec"]["containers"]
        assert {e["name"] for e in container["env"]} == {"ACTORLOG_STORE_URL"}
