"""No network unless the user asks for it: tamis commands on local models and data make no
connection outside the machine, DNS included (run under `strace -f -e trace=connect`).

Before the fix, `tamis train rm --model tiny` started huggingface_hub's telemetry thread (from
TRL's trainer), which resolved the Hub's host name: strace showed `connect()` to a DNS server on
port 53.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

STRACE = shutil.which("strace")
TAMIS = Path(sys.executable).with_name("tamis")

pytestmark = pytest.mark.skipif(STRACE is None, reason="strace is not installed")

# connect(6, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")}, 16) = 0
# connect(7, {sa_family=AF_INET6, sin6_port=htons(443), ..., inet_pton(AF_INET6, "::1", ...
_FAMILY = re.compile(r"sa_family=(AF_\w+)")
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_ADDR4 = re.compile(r'inet_addr\("([^"]+)"\)')
_ADDR6 = re.compile(r'inet_pton\(AF_INET6, "([^"]+)"')


def outside_connects(trace: str) -> list[str]:
    """strace lines of connect() calls that reach past the machine or look a name up.

    AF_INET/AF_INET6 to a non-loopback address, and anything on port 53 (DNS, even to a
    loopback stub resolver). AF_UNIX connects are local (e.g. glibc asking nscd for the user's
    passwd entry) and fine.
    """
    bad = []
    for line in trace.splitlines():
        if "connect(" not in line:
            continue
        family = _FAMILY.search(line)
        if family is None:
            continue
        if family.group(1) not in ("AF_INET", "AF_INET6"):
            continue
        port = _PORT.search(line)
        addr = _ADDR4.search(line) or _ADDR6.search(line)
        if (
            port
            and int(port.group(1)) == 53
            or addr is None
            or not ipaddress.ip_address(addr.group(1)).is_loopback
        ):
            bad.append(line)
    return bad


def test_outside_connects_parser() -> None:
    dns = 'connect(6, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0'
    stub = 'connect(6, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0'
    web = (
        "connect(7, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "2600:1f18::1", &sin6_addr), sin6_scope_id=0}, 28) = -1'
    )
    loop = 'connect(8, {sa_family=AF_INET, sin_port=htons(5000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0'
    unix = 'connect(3, {sa_family=AF_UNIX, sun_path="/tmp/x.sock"}, 110) = 0'
    nscd = 'connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1'
    assert outside_connects("\n".join([dns, stub, web, loop, unix, nscd])) == [dns, stub, web]


def _traced(
    args: list[str], cwd: Path, timeout: int = 600
) -> tuple[subprocess.CompletedProcess[str], str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # what tamis must set by itself; CI=1 would hide TRL's telemetry call
        if not k.startswith(("HF_", "TRANSFORMERS_", "DO_NOT_TRACK", "DISABLE_TELEMETRY"))
        and k != "CI"
    }
    env["HF_HOME"] = str(cwd / "hf_home")  # an empty cache: nothing could be served locally
    trace = cwd / "strace.txt"
    cmd = [STRACE or "strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace)]
    if _seccomp_ok():
        cmd.append("--seccomp-bpf")  # stop only on connect(): much less overhead
    done = subprocess.run(
        [*cmd, str(TAMIS), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert trace.exists(), f"strace wrote no trace: {done.stderr[-2000:]}"
    return done, trace.read_text()


def _seccomp_ok() -> bool:
    probe = subprocess.run(
        [
            STRACE or "strace",
            "-f",
            "--seccomp-bpf",
            "-e",
            "trace=connect",
            "-o",
            os.devnull,
            "true",
        ],
        capture_output=True,
    )
    return probe.returncode == 0


def test_train_rm_tiny_makes_no_outside_connection(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from tamis.curate.preferences import tone_pairs

    tone_pairs(24, seed=0).write_parquet(tmp_path / "pairs.parquet")
    (tmp_path / "rm.yaml").write_text(
        "num_train_epochs: 1\nper_device_train_batch_size: 8\neval_fraction: 0.25\n"
        "tiny_vocab_size: 300\ntiny_layers: 1\n"
    )
    done, trace = _traced(
        ["train", "rm", "--data", "pairs.parquet", "--model", "tiny", "--out", "rm",
         "--config", "rm.yaml", "--threads", "1", "--json"],
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert outside_connects(trace) == [], outside_connects(trace)


@pytest.mark.slow
def test_demo_makes_no_outside_connection(tmp_path: Path) -> None:
    done, trace = _traced(["demo", "--store", str(tmp_path / "store"), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert outside_connects(trace) == [], outside_connects(trace)
