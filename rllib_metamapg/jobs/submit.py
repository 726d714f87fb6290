"""Submits sweeps to a Ray cluster as Ray Jobs, follows them and finds their results.

The job runs ``metamapg sweep ... --report`` on the cluster (or ``--resume``), so a
sweep submitted here behaves exactly like one run locally: same validation, same
Tune experiment folder, same report.  Paths are fixed at submission time and kept
in the job's metadata, which is how ``--attach`` finds them again later.

Token authentication follows Ray's own rules: the token comes from
``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``; it is sent
only in the request header and never printed.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from rllib_metamapg.errors import UsageError

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# Exit codes of ``--wait``/``--follow`` by terminal job status; a failed job
# returns its driver's exit code when Ray knows it.
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 3}
# Never uploaded with a working_dir, whatever the .gitignore says.
WORKING_DIR_EXCLUDES = [".git", ".venv", "**/__pycache__", "*.egg-info", ".pytest_cache",
                        "build", "dist"]
# Results are not code: not uploaded unless --upload-results (sweep folders found
# anywhere in the checkout are left out as well).
RESULT_EXCLUDES = ["demo_out", "study_out", "metamapg_results", "results", "report", "reports",
                   "**/checkpoint_*"]
# The Ray dashboard refuses bigger job packages with a bare HTTP 413.
MAX_UPLOAD_MIB = 100.0
TOKEN_HELP = ("Give the cluster's token (on the head node: 'ray get-auth-token') through "
              "RAY_AUTH_TOKEN_PATH=<file holding it> or RAY_AUTH_TOKEN, or put it in "
              "~/.ray/auth_token; RAY_AUTH_MODE=token is then implied.")


class SubmitError(UsageError):
    """The cluster refused or could not be reached; the message says what to do."""


@dataclass
class Submission:
    """What a submitted sweep job is and where its results will be.

    Attributes:
        job_id: Ray's submission id.
        address: Dashboard address the job was submitted to.
        experiment: The Tune experiment folder on the cluster (path or URI).
        report: Where ``metamapg report`` output is written when the sweep succeeds.
        entrypoint: The shell command the job runs.
        metadata: The job metadata holding ``experiment`` and ``report``.
    """

    job_id: str
    address: str
    experiment: str
    report: str
    entrypoint: str = ""
    metadata: Dict[str, str] = field(default_factory=dict)


def resolve_address(address: Optional[str]) -> str:
    """``--address``, else ``$RAY_API_SERVER_ADDRESS``/``$RAY_ADDRESS`` (http ones), else local."""
    for candidate in (address, os.environ.get("RAY_API_SERVER_ADDRESS"),
                      os.environ.get("RAY_ADDRESS")):
        if candidate and candidate != "auto":
            given = candidate
            if "://" not in candidate:
                candidate = "http://" + candidate
            if not candidate.startswith(("http://", "https://")) or not _valid_url(candidate):
                raise UsageError(f"--address {given!r}: give the dashboard's http(s) "
                                 f"address (default port 8265), e.g. {DEFAULT_ADDRESS}.")
            return candidate.rstrip("/")
    return DEFAULT_ADDRESS


def _valid_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return bool(parts.hostname) and not any(c.isspace() for c in url)


# Seconds to connect to the dashboard, and to wait for each of its answers.  A
# stale port-forward accepts the connection and never answers: without these
# the command would wait forever.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = float(os.environ.get("METAMAPG_SUBMIT_TIMEOUT", "60"))


def enable_token_auth_from_environment() -> None:
    """Sends the token when one is configured, as ``ray job submit`` users expect.

    Ray's client only attaches a token in ``RAY_AUTH_MODE=token``; a user who set
    ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH`` (or has ``~/.ray/auth_token``) clearly
    means to use it.  Must run before Ray is imported: Ray reads the mode once.
    """
    if os.environ.get("RAY_AUTH_MODE"):
        return
    if (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def check_storage_path(storage_path: Optional[str]) -> str:
    """A sweep on a cluster needs storage every node and the report can reach."""
    if not storage_path:
        raise UsageError("--storage-path is required for a cluster sweep: a URI (s3://bucket/"
                         "metamapg, gs://...) or an absolute path every node mounts (NFS).")
    if "://" not in storage_path and not os.path.isabs(storage_path):
        raise UsageError(f"--storage-path {storage_path}: a relative path would land in the "
                         "job's temporary working folder on the cluster; give an absolute "
                         "shared path or a URI.")
    # Not sweep.run.storage_location: that resolves against this machine, and this
    # path lives on the cluster.
    return storage_path.rstrip("/") if "://" in storage_path else os.path.normpath(storage_path)


def project_root(start: Optional[Path] = None) -> Optional[Path]:
    """The checkout holding ``setup.cfg``, ``rllib_metamapg/`` and ``tuned_examples/``, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / p).exists() for p in ("setup.cfg", "rllib_metamapg", "tuned_examples")):
            return folder
    return None


def upload_excludes(folder: Path, extra: List[str], upload_results: bool) -> List[str]:
    """The working_dir excludes: ours, results and sweep folders (unless asked), extras."""
    from rllib_metamapg.results import METADATA_FILE

    excludes = list(WORKING_DIR_EXCLUDES)
    if not upload_results:
        excludes += RESULT_EXCLUDES
        excludes += sorted("/" + str(p.parent.relative_to(folder))
                           for p in folder.rglob(METADATA_FILE)
                           if ".venv" not in p.parts and p.parent != folder)
    return excludes + list(extra)


def upload_size(folder: Path, excludes: List[str]) -> Tuple[int, Dict[str, int]]:
    """Bytes Ray would upload (its own walk: excludes, .gitignore, .rayignore) and the
    largest top-level entries."""
    from ray._private.runtime_env.packaging import _dir_travel, _get_excludes

    sizes: Dict[str, int] = {}

    def count(path: Path):
        if path.is_file():
            top = path.relative_to(folder).parts[0]
            sizes[top] = sizes.get(top, 0) + path.stat().st_size

    ignore = os.environ.get("RAY_RUNTIME_ENV_IGNORE_GITIGNORE", "0") == "1"
    _dir_travel(folder, [_get_excludes(folder, excludes)], count, include_gitignore=not ignore)
    return sum(sizes.values()), sizes


def runtime_env(working_dir: Optional[str], env_vars: Dict[str, str],
                pip: List[str], exclude: Optional[List[str]] = None,
                upload_results: bool = False, max_upload_mib: float = MAX_UPLOAD_MIB) -> Dict:
    """The job's runtime_env: the uploaded checkout (or nothing: the installed package).

    The upload is measured first: one over ``max_upload_mib`` is refused with its
    size, its largest entries and the flags that shrink it."""
    env: Dict = {}
    if working_dir:
        folder = Path(working_dir).expanduser().resolve()
        if not (folder / "rllib_metamapg").is_dir():
            raise UsageError(f"--working-dir {working_dir}: no rllib_metamapg/ package in it; "
                             "pass the project checkout, or --installed to use the package "
                             "installed on the cluster.")
        excludes = upload_excludes(folder, exclude or [], upload_results)
        total, sizes = upload_size(folder, list(excludes))
        if total > max_upload_mib * 2 ** 20:
            largest = ", ".join(f"{name} ({size / 2 ** 20:.1f} MiB)" for name, size in
                                sorted(sizes.items(), key=lambda kv: -kv[1])[:3])
            raise UsageError(
                f"the working dir {folder} would upload {total / 2 ** 20:.1f} MiB (limit "
                f"{max_upload_mib:g} MiB; the dashboard refuses large packages). Largest: "
                f"{largest}. Leave them out with --exclude PATTERN (gitignore syntax), or "
                "use --installed.")
        env["working_dir"] = str(folder)
        env["excludes"] = excludes
    if env_vars:
        env["env_vars"] = dict(env_vars)
    if pip:
        env["pip"] = list(pip)
    return env


def parse_env_vars(items: List[str]) -> Dict[str, str]:
    """``["K=V", ...]`` -> dict, refusing malformed items and anything auth-related."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env-var {item!r}: expected KEY=VALUE.")
        if key.startswith("RAY_AUTH"):
            raise UsageError(f"--env-var {key}: the cluster's nodes already hold the token; "
                             "never ship it in a runtime_env.")
        out[key] = value
    return out


def sweep_command(argv: List[str]) -> str:
    """The job's entrypoint: the sweep CLI run by the cluster's Python."""
    return shlex.join(["python", "-m", "rllib_metamapg.cli", "sweep", *argv])


@functools.lru_cache(maxsize=None)
def _client(address: str):
    """One client per address: creating one checks the connection and the token."""
    enable_token_auth_from_environment()
    from ray.job_submission import JobSubmissionClient

    class TimedClient(JobSubmissionClient):
        """Ray's client with a timeout on every request (Ray sets none)."""

        def _do_request(self, method, endpoint, **kwargs):
            import requests

            kwargs.setdefault("timeout", (CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
            try:
                return super()._do_request(method, endpoint, **kwargs)
            except requests.exceptions.Timeout:
                raise SubmitError(
                    f"the Ray dashboard at {address} did not answer {method} {endpoint} "
                    f"within {kwargs['timeout'][1]:g} s (connect {kwargs['timeout'][0]:g} s): "
                    "a stale port-forward or an overloaded head node? Restart the "
                    "port-forward ('kubectl port-forward ... 8265:8265') or check the "
                    "cluster; METAMAPG_SUBMIT_TIMEOUT sets the wait in seconds.") from None

    try:
        return _call(address, TimedClient, address)
    except ConnectionError:
        raise SubmitError(f"cannot reach a Ray dashboard at {address}: is the cluster up and "
                          "is this its dashboard address (port 8265; 'ray dashboard "
                          "cluster.yaml' or 'kubectl port-forward ... 8265:8265' forwards "
                          "it)?") from None


def _auth_message(address: str, ray_message: str) -> str:
    if "Forbidden" in ray_message or "Authentication failed" in ray_message:
        what = "refused the token sent (403: not this cluster's token)"
    else:
        what = "requires a token and none was sent (401)"
    return f"the Ray cluster at {address} {what}. {TOKEN_HELP}"


def _call(address: str, fn: Callable, *args, **kwargs):
    from ray.exceptions import AuthenticationError

    try:
        return fn(*args, **kwargs)
    except AuthenticationError as e:
        raise SubmitError(_auth_message(address, str(e))) from None


def submit(address: str, entrypoint: str, runtime: Dict, experiment: str,
           job_id: Optional[str] = None) -> Submission:
    """Submits ``entrypoint`` and returns where its results will be."""
    client = _client(address)
    report = experiment + "/report"
    metadata = {"metamapg_experiment": experiment, "metamapg_report": report}
    job = _call(address, client.submit_job, entrypoint=entrypoint, runtime_env=runtime or None,
                submission_id=job_id, metadata=metadata)
    return Submission(job, address, experiment, report, entrypoint, metadata)


def attach(address: str, job_id: str) -> Submission:
    """The submission of an existing job, from the metadata saved with it."""
    client = _client(address)
    try:
        info = _call(address, client.get_job_info, job_id)
    except RuntimeError as e:
        raise SubmitError(f"job {job_id} not found at {address} ({e}).") from None
    meta = info.metadata or {}
    if "metamapg_experiment" not in meta:
        raise SubmitError(f"job {job_id} was not submitted by 'metamapg submit'.")
    return Submission(job_id, address, meta["metamapg_experiment"], meta["metamapg_report"],
                      info.entrypoint, dict(meta))


def follow(sub: Submission, out=sys.stdout) -> None:
    """Streams the job's logs until it ends."""
    import asyncio

    client = _client(sub.address)

    async def tail():
        async for lines in client.tail_job_logs(sub.job_id):
            out.write(lines)
            out.flush()

    _call(sub.address, asyncio.run, tail())


def wait(sub: Submission, poll_s: float = 2.0, timeout_s: Optional[float] = None,
         on_status: Optional[Callable[[str], None]] = None) -> str:
    """Blocks until the job reaches a terminal status; returns it (``SUCCEEDED``...)."""
    client = _client(sub.address)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = None
    while True:
        status = str(_call(sub.address, client.get_job_status, sub.job_id).value)
        if status != last and on_status:
            on_status(status)
        last = status
        if status in EXIT_CODES:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {sub.job_id} still {status} after {timeout_s} s")
        time.sleep(poll_s)


def exit_code(sub: Submission, status: str) -> int:
    """The exit code matching a terminal status (a failed driver's own code when known)."""
    if status == "FAILED":
        info = _call(sub.address, _client(sub.address).get_job_info, sub.job_id)
        code = getattr(info, "driver_exit_code", None)
        return code if isinstance(code, int) and code > 0 else EXIT_CODES["FAILED"]
    return EXIT_CODES[status]

