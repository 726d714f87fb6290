"""The part of the KubeRay ``ray.io/v1`` CRD schema our manifests use, as JSON Schema.

Transcribed from KubeRay's API types (ray-operator/apis/ray/v1/raycluster_types.go
and rayjob_types.go: field names, JSON types, required fields, enums) and the
Kubernetes core/v1 types they embed (PodTemplateSpec, Container, EnvVar,
ResourceRequirements, Volume).  Every object is closed (``additionalProperties:
false``) so a misspelt or misplaced field fails, as it would be pruned or rejected
by the API server.  Only the fields our manifests use are listed.
"""

# resource.Quantity: int or string like "500m", "16Gi", "4".
QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern":
            r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
            r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"}]}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
INT32 = {"type": "integer", "minimum": -2**31, "maximum": 2**31 - 1}


def obj(properties, required=()):
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}


def array(items):
    return {"type": "array", "items": items}


ENV_VAR = obj({
    "name": {"type": "string"}, "value": {"type": "string"},
    "valueFrom": obj({"secretKeyRef": obj({"name": {"type": "string"},
                                           "key": {"type": "string"},
                                           "optional": {"type": "boolean"}}, ["key"])}),
}, ["name"])

CONTAINER = obj({
    "name": {"type": "string"},
    "image": {"type": "string"},
    "command": array({"type": "string"}),
    "args": array({"type": "string"}),
    "env": array(ENV_VAR),
    "ports": array(obj({"containerPort": INT32, "name": {"type": "string"},
                        "protocol": {"type": "string"}}, ["containerPort"])),
    "resources": obj({"requests": {"type": "object", "additionalProperties": QUANTITY},
                      "limits": {"type": "object", "additionalProperties": QUANTITY}}),
    "volumeMounts": array(obj({"name": {"type": "string"}, "mountPath": {"type": "string"},
                               "readOnly": {"type": "boolean"}}, ["mountPath", "name"])),
}, ["name"])

POD_TEMPLATE = obj({
    "metadata": obj({"labels": STRING_MAP, "annotations": STRING_MAP}),
    "spec": obj({
        "containers": {**array(CONTAINER), "minItems": 1},
        "volumes": array(obj({"name": {"type": "string"},
                              "persistentVolumeClaim": obj({"claimName": {"type": "string"},
                                                            "readOnly": {"type": "boolean"}},
                                                           ["claimName"])}, ["name"])),
        "restartPolicy": {"type": "string", "enum": ["Always", "OnFailure", "Never"]},
        "nodeSelector": STRING_MAP,
    }, ["containers"]),
})

HEAD_GROUP = obj({"rayStartParams": STRING_MAP, "template": POD_TEMPLATE,
                  "serviceType": {"type": "string"}, "enableIngress": {"type": "boolean"}},
                 ["rayStartParams", "template"])

WORKER_GROUP = obj({
    "groupName": {"type": "string"}, "replicas": INT32, "minReplicas": INT32,
    "maxReplicas": INT32, "idleTimeoutSeconds": INT32, "rayStartParams": STRING_MAP,
    "template": POD_TEMPLATE, "numOfHosts": INT32,
}, ["groupName", "maxReplicas", "minReplicas", "rayStartParams", "template"])

RAY_CLUSTER_SPEC = obj({
    "rayVersion": {"type": "string"},
    "enableInTreeAutoscaling": {"type": "boolean"},
    "headGroupSpec": HEAD_GROUP,
    "workerGroupSpecs": array(WORKER_GROUP),
}, ["headGroupSpec"])

METADATA = obj({"name": {"type": "string"}, "namespace": {"type": "string"},
                "labels": STRING_MAP, "annotations": STRING_MAP}, ["name"])

RAY_CLUSTER = obj({"apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayCluster"},
                   "metadata": METADATA, "spec": RAY_CLUSTER_SPEC},
                  ["apiVersion", "kind", "metadata", "spec"])

RAY_JOB = obj({
    "apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayJob"}, "metadata": METADATA,
    "spec": obj({
        "entrypoint": {"type": "string"},
        "runtimeEnvYAML": {"type": "string"},
        "jobId": {"type": "string"},
        "submissionMode": {"type": "string",
                           "enum": ["K8sJobMode", "HTTPMode", "InteractiveMode"]},
        "shutdownAfterJobFinishes": {"type": "boolean"},
        "ttlSecondsAfterFinished": INT32,
        "activeDeadlineSeconds": INT32,
        "backoffLimit": INT32,
        "entrypointNumCpus": {"type": "number"},
        "entrypointNumGpus": {"type": "number"},
        "metadata": STRING_MAP,
        "submitterPodTemplate": POD_TEMPLATE,
        "rayClusterSpec": RAY_CLUSTER_SPEC,
    }),
}, ["apiVersion", "kind", "metadata", "spec"])

PVC = obj({
    "apiVersion": {"const": "v1"}, "kind": {"const": "PersistentVolumeClaim"},
    "metadata": METADATA,
    "spec": obj({"accessModes": array({"enum": ["ReadWriteOnce", "ReadOnlyMany",
                                                "ReadWriteMany", "ReadWriteOncePod"]}),
                 "storageClassName": {"type": "string"},
                 "resources": obj({"requests": obj({"storage": QUANTITY}, ["storage"])})}),
}, ["apiVersion", "kind", "metadata", "spec"])

SCHEMAS = {"RayCluster": RAY_CLUSTER, "RayJob": RAY_JOB, "PersistentVolumeClaim": PVC}
