"""ray-cluster.yaml (`ray up`, the Ray cluster launcher) and kuberay-raycluster.yaml (a KubeRay RayCluster),
both running the image built from the rendered Dockerfile, one Ray worker per GPU.

The image must hold Ray at the version these files name: render its lock with `--with-ray`. The Hugging Face
token reaches the nodes from a secret (a Kubernetes Secret, or an env file provisioned on each node), never
from these files. The launcher's `docker run` replaces the image's entrypoint (`envsolve run`), since Ray
starts its own processes in the container.
"""

from __future__ import annotations

from envsolve.render.files import Output, RenderContext, template

# pypi.org/project/ray/2.60.0: cp310-cp313 manylinux2014 x86_64 and aarch64 wheels; the version `--with-ray`
# locks, so the cluster files and the image agree.
RAY_VERSION = "2.60.0"
# AWS instance types by the GPU the plan is for (aws.amazon.com/ec2/instance-types/g5, g6, p4, p5).
INSTANCES = {"A10G": "g5.xlarge", "L4": "g6.xlarge", "T4": "g4dn.xlarge", "A100": "p4d.24xlarge",
             "H100": "p5.48xlarge", "L40S": "g6e.xlarge"}


def render(context: RenderContext, kind: str) -> list[Output]:
    c = context.contract
    image = f"envsolve-{c.workload}:{c.plan_sha256[:12]}"
    values = {"image": image, "ray_version": RAY_VERSION, "instance": INSTANCES.get(c.target.modal_gpu, "g6.xlarge")}
    return [Output("ray-cluster.yaml", template("ray-cluster.yaml.j2", c, **values)),
            Output("kuberay-raycluster.yaml", template("kuberay-raycluster.yaml.j2", c, **values))]
