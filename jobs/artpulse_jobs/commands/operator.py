"""``artpulse operator``: run the ArtPulseModel operator (kopf) in this process's place.

The command only builds kopf's command line and execs it: nothing imports the operator
package, which kopf loads with ``-m artpulse_operator``.
"""

from __future__ import annotations

import os
import sys

import click

OPERATOR_MODULE = "artpulse_operator"


def kopf_argv(
    namespace: str | None,
    all_namespaces: bool,
    liveness_host: str,
    liveness_port: int,
    verbose: bool,
) -> list[str]:
    """The ``python -m kopf run ...`` command line for the given options."""
    argv = [sys.executable, "-m", "kopf", "run", "--standalone", "-m", OPERATOR_MODULE]
    argv += ["--all-namespaces"] if all_namespaces else ["--namespace", str(namespace)]
    if liveness_port:
        argv.append(f"--liveness=http://{liveness_host}:{liveness_port}/healthz")
    if verbose:
        argv.append("--verbose")
    return argv


@click.command("operator")
@click.option(
    "--namespace",
    "-n",
    envvar="ARTPULSE_OPERATOR_NAMESPACE",
    help="Namespace whose ArtPulseModel resources to serve (env ARTPULSE_OPERATOR_NAMESPACE).",
)
@click.option(
    "--all-namespaces",
    "-A",
    is_flag=True,
    help="Serve every namespace (needs a ClusterRole instead of manifests/rbac.yaml's Role).",
)
@click.option(
    "--liveness-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port of the liveness endpoint /healthz; 0 turns it off.",
)
@click.option(
    "--liveness-host", default="0.0.0.0", show_default=True, help="Address it listens on."
)
@click.option("--verbose", is_flag=True, help="kopf's debug logging.")
def operator_command(
    namespace: str | None,
    all_namespaces: bool,
    liveness_port: int,
    liveness_host: str,
    verbose: bool,
) -> None:
    """Run the operator that keeps serving Deployments on the version an MLflow alias names.

    It watches ArtPulseModel resources (kubectl get apm), resolves their alias at each
    resource's poll interval, pins models:/<name>/<N> into the Deployment's pod template,
    promotes when spec.version is set and rolls back a rollout that exceeds its progress
    deadline. The registry is the resource's spec.trackingUri, else MLFLOW_TRACKING_URI.
    """
    if bool(namespace) == all_namespaces:
        raise click.UsageError(
            "give exactly one of --namespace NS (or ARTPULSE_OPERATOR_NAMESPACE) "
            "and --all-namespaces"
        )
    argv = kopf_argv(namespace, all_namespaces, liveness_host, liveness_port, verbose)
    os.execv(argv[0], argv)
