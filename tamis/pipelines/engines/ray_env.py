"""Start or join Ray on loopback only: the settings that keep Ray off the network.

Ray reaches for the network (cloud metadata, usage stats, the dashboard, the node's public IP)
unless all of these are set; they were measured on a machine without a network (docs/ray.md):

- `HOME` pointed at a temp dir holding `ray_bootstrap_config.yaml` containing `{}` (set before
  `import ray`; restored when the session ends);
- `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` and `RAY_USAGE_STATS_ENABLED=0` before `import ray`;
- `ray.init(include_dashboard=False, _node_ip_address="127.0.0.1")` for a local instance.

`ray_session(address)` starts a local instance (2 CPUs) and stops it at the end, or joins the
cluster at `address` (and only disconnects).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tamis.errors import EngineError, MissingDependencyError

#: environment set before `import ray` (and inherited by the workers a local instance starts)
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
}
LOCAL_IP = "127.0.0.1"
#: the object store of a local instance (Ray spills to disk beyond it)
DEFAULT_OBJECT_STORE = 512 * 2**20


def loopback_home(root: Path | None = None) -> Path:
    """A temp HOME holding `ray_bootstrap_config.yaml` = `{}` (no cluster config is looked up)."""
    home = Path(tempfile.mkdtemp(prefix="tamis-ray-home-", dir=root))
    (home / "ray_bootstrap_config.yaml").write_text("{}\n")
    return home


def loopback_environ(home: Path) -> dict[str, str]:
    """The variables to set (HOME included) before `import ray` or `ray start`."""
    return {**LOOPBACK_ENV, "HOME": str(home)}


def loopback_host(address: str) -> str | None:
    """The node IP a driver joining `address` uses: the address's own host when it is a loopback
    address (a one-machine cluster on 127.0.0.2, say), else Ray's choice."""
    host = address.rsplit(":", 1)[0].removeprefix("ray://")
    return host if host.startswith("127.") else None


def import_ray() -> Any:
    """`import ray` after the loopback environment, or a clear error naming the extra."""
    for key, value in LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            f"the Ray engine needs ray ({exc})",
            fix="pip install 'tamis[ray]'  (or use --engine local, the default)",
        ) from exc
    return ray


@contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: int = 2,
    object_store_memory: int = DEFAULT_OBJECT_STORE,
) -> Iterator[Any]:
    """Ray, ready: a local loopback instance started here (stopped at the end) or the cluster at
    `address` joined (disconnected at the end). Yields the `ray` module."""
    saved = _ray_environ()
    home = loopback_home()
    os.environ.update(loopback_environ(home))
    try:
        ray = import_ray()
        if ray.is_initialized():
            ray.shutdown()
        try:
            if address is None:
                ray.init(
                    # "local": a new instance, never the last `ray start` cluster of this machine
                    # (which address=None would join, through /tmp/ray/ray_current_cluster)
                    address="local",
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    _node_ip_address=LOCAL_IP,
                    object_store_memory=object_store_memory,
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(
                    address=address,
                    _node_ip_address=loopback_host(address),
                    log_to_driver=False,
                    configure_logging=False,
                )
        except (RuntimeError, ConnectionError, TimeoutError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise EngineError(
                f"could not start or join {where}: {str(exc).splitlines()[0][:300]}",
                field="--address" if address else "--engine",
                fix="check the address and that the cluster runs the same Ray version"
                if address
                else "a Ray instance belongs to one process; retry, or use --engine local",
            ) from None
        try:
            yield ray
        finally:
            ray.shutdown()
    finally:
        _restore(saved)
        shutil.rmtree(home, ignore_errors=True)


def _ray_environ() -> dict[str, str]:
    """The variables Ray sets or reads in this process (RAY_*, HOME, PYTHONBREAKPOINT)."""
    keep = ("HOME", "PYTHONBREAKPOINT")
    return {k: v for k, v in os.environ.items() if k.startswith("RAY_") or k in keep}


def _restore(saved: dict[str, str]) -> None:
    """Put those variables back as they were before the session (Ray leaves RAY_AUTH_MODE...)."""
    for key in set(_ray_environ()) - set(saved):
        os.environ.pop(key, None)
    os.environ.update(saved)
