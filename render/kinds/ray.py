"""ray-cluster.yaml (`ray up`, the Ray cluster launcher on AWS) and kuberay-raycluster.yaml (a KubeRay RayCluster),
both running the image built from the rendered Dockerfile, one Ray worker per GPU.

Only with `--with-ray`: then the lock holds Ray at the version these files name, and the Dockerfile adds what
the launcher's Docker command runner runs inside the container (rsync for file mounts, ssh for the head's
autoscaler). The worker instance type is the plan's GPU or the nearest AWS rents (render/cloud.py), and Ray is told
every GPU it has. The Hugging Face token reaches the nodes from a secret (a Kubernetes Secret, or an env file each
node writes from AWS Secrets Manager), never from these files. The launcher's `docker run` replaces the image's
entrypoint (`envsolve run`), since Ray starts its own processes in the container.
"""

from __future__ import annotations

from envsolve.render.cloud import rent
from envsolve.render.files import NotApplicable, Output, RenderContext, template

# pypi.org/project/ray/2.60.0: cp310-cp313 manylinux2014 x86_64 and aarch64 wheels; the version `--with-ray`
# locks, so the cluster files and the image agree.
RAY_VERSION = "2.60.0"
# What the launcher's DockerCommandRunner runs inside the container (ray/autoscaler/_private/command_runner.py,
# Ray 2.60.0): `rsync -e 'docker exec -i' ...` for file mounts, and the head's autoscaler reaches the workers
# with `ssh` (SSHCommandRunner). The rendered Dockerfile installs both under --with-ray.
CONTAINER_PACKAGES = ("openssh-client", "rsync")
# The batch, as `ray exec` runs it in the head node's container; tests/test_platform_ray.py runs the same command.
BATCH = "envsolve run --ray auto /data/in -o /data/out"
K8S_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def render(context: RenderContext, kind: str) -> list[Output]:
    c = context.contract
    if not context.with_ray:
        raise NotApplicable("the image would hold no Ray: render with --with-ray (the lock then holds "
                            f"ray=={RAY_VERSION}, the Dockerfile {' and '.join(CONTAINER_PACKAGES)})")
    image = f"envsolve-{c.workload}:{c.plan_sha256[:12]}"
    values = {"image": image, "ray_version": RAY_VERSION, "batch": BATCH, "k8s_arch": K8S_ARCH[c.target.arch]}
    outputs = [Output("kuberay-raycluster.yaml", template("kuberay-raycluster.yaml.j2", c, **values))]
    why = _launcher_refusal(context)
    if why:
        context.warn(f"ray-cluster.yaml is not written: {why}; kuberay-raycluster.yaml is")
        return [*outputs, Output("ray-cluster.yaml", "", remove=True)]
    t = c.target
    rental = rent("aws", arch=t.arch, model=t.gpu_model, cc=t.compute_capability,
                  memory_mib=t.gpu_memory_mib) if c.gpu else None
    return [Output("ray-cluster.yaml", template("ray-cluster.yaml.j2", c, rental=rental, **values)), *outputs]


def _launcher_refusal(context: RenderContext) -> str:
    t = context.contract.target
    if t.arch != "x86_64":
        # ray/autoscaler/_private/aws/config.py DEFAULT_AMI: the launcher's default images are x86_64 Deep Learning
        # AMIs, and AWS's one arm64 GPU family (g5g, T4G) is in matrices/cloud_gpus.toml.
        return (f"the Ray launcher's default AWS images are x86_64 and this plan is for {t.arch} (use KubeRay on "
                "arm64 nodes, or plan for x86_64)")
    if context.contract.gpu and rent("aws", arch=t.arch, model=t.gpu_model, cc=t.compute_capability,
                                     memory_mib=t.gpu_memory_mib) is None:
        return (f"AWS rents no GPU with compute capability {t.compute_capability} or more and {t.gpu_memory_mib} "
                "MiB (matrices/cloud_gpus.toml)")
    return ""
