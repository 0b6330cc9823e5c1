"""The production image, built without a Docker engine: each step of the Dockerfile is carried out
as the engine would (WORKDIR, COPY honouring .dockerignore, every RUN command with exactly the
environment the ENV and ARG lines give it, in a clean virtualenv standing in for the base image's
Python), then every app service of docker-compose.yml runs its command in that "image" with the
environment compose gives it.

What differs from a real build, and why:
- The step that adds the ``aspire`` user (and makes its /data folder) is not run: it would add a
  user to the machine running the tests. Every other step is.
- compose's service names (``postgres``, ``redis``) do not resolve here: the database URL points at a
  scratch database on the test server and the Redis URLs at the test run's Redis databases, and web
  binds a free loopback port instead of 0.0.0.0:8000 (and a worker's metrics port a free one too);
  the folders compose mounts (/data, the /run/metrics tmpfs) are folders under the image's root.
  Everything else is compose's, interpolated from the file with a ``.env`` holding only the two
  values the app services demand.
- There is no compose binary (``docker compose`` is not installed with this Docker CLI), so
  ``docker compose config`` is stood in for by a structural check of the parsed file.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from aspire_sync.celery import known_queues

pytestmark = pytest.mark.slow

ROOT = Path(settings.BASE_DIR)
NOT_RUN = {"useradd"}  # changes the host's users; see the module's docstring
COMPOSE_DOTENV = {
    "SECRET_KEY": "compose-test-6Yp!v2#kQ9zL@r4Tw8&nB1mX^s5Hd0Jc-fV3%gW7*eR2(uT9)iO4",
    "TOKEN_ENCRYPTION_KEYS": "Y29tcG9zZS10ZXN0LW9ubHktdG9rZW4ta2V5LTEyMzQ=",
}


# -- the Dockerfile --------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    argument: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, argument = whole.partition(" ")
        instructions.append(Instruction(keyword.upper(), argument.strip()))
    return instructions


def key_values(argument: str) -> dict[str, str]:
    """ENV/ARG ``KEY=value KEY2="value 2"`` (and the old ``ENV KEY value`` form)."""
    words = shlex.split(argument)
    if len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) if "=" in word else (word, "") for word in words)


def ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(parts[0], pattern):
            return True
        if pattern.startswith("**/") and any(fnmatch.fnmatch(part, bare) for part in parts):
            return True
    return False


def copy_context(source: Path, dest: Path, patterns: list[str]) -> None:
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if ignored(relative, patterns):
            continue
        target = dest / relative
        if path.is_symlink() or path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target, follow_symlinks=True)
        elif path.is_dir():
            target.mkdir(parents=True, exist_ok=True)


@dataclass
class Image:
    root: Path  # stands for the image's /
    workdir: Path
    python_bin: Path
    env: dict[str, str]
    cmd: list[str]
    steps: list[tuple[str, subprocess.CompletedProcess[str] | None]] = field(default_factory=list)

    def path_env(self) -> str:
        return f"{self.python_bin}:/usr/local/bin:/usr/bin:/bin"


def base_python(from_image: str) -> str:
    """The interpreter matching the FROM line's ``python:3.X-...`` tag."""
    match = re.match(r"python:(\d+\.\d+)", from_image)
    assert match, f"the image is not built FROM an official python image: {from_image}"
    interpreter = shutil.which(f"python{match.group(1)}")
    if interpreter is None:
        pytest.skip(f"python{match.group(1)} (the image's Python) is not installed here")
    return interpreter


def build(root: Path) -> Image:
    instructions = dockerfile_instructions(ROOT / "Dockerfile")
    assert instructions[0].keyword == "FROM"
    interpreter = base_python(instructions[0].argument)
    subprocess.run([interpreter, "-m", "venv", str(root / "python")], check=True)
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    image = Image(root=root, workdir=root, python_bin=root / "python" / "bin", env={}, cmd=[])
    for instruction in instructions[1:]:
        if instruction.keyword in ("ENV", "ARG"):
            image.env.update(key_values(instruction.argument))
        elif instruction.keyword == "WORKDIR":
            image.workdir = root / instruction.argument.lstrip("/")
            image.workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            words = [w for w in shlex.split(instruction.argument) if not w.startswith("--")]
            *sources, dest = words
            target = image.workdir / dest
            for source in sources:
                if source == ".":
                    copy_context(ROOT, target, patterns)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / source, target / Path(source).name)
        elif instruction.keyword == "RUN":
            command = instruction.argument
            if shlex.split(command)[0] in NOT_RUN:
                image.steps.append((command, None))
                continue
            # Absolute paths the step names are the image's: they land under its root.
            command = command.replace("sqlite:////tmp/", f"sqlite:///{root}/")
            env = {**image.env, "PATH": image.path_env(), "HOME": str(root / "home")}
            result = subprocess.run(
                ["/bin/sh", "-c", command], cwd=image.workdir, env=env, capture_output=True, text=True, timeout=1200
            )
            image.steps.append((instruction.argument, result))
            output = result.stdout[-3000:] + result.stderr[-3000:]
            assert result.returncode == 0, f"RUN {instruction.argument}\n{output}"
        elif instruction.keyword == "CMD":
            image.cmd = json.loads(instruction.argument)
        elif instruction.keyword not in ("USER", "EXPOSE", "LABEL"):
            raise AssertionError(f"the test does not know how to carry out {instruction.keyword}")
    return image


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return build(tmp_path_factory.mktemp("image"))


def test_every_run_step_of_the_dockerfile_succeeds(image: Image) -> None:
    ran = [command for command, result in image.steps if result is not None]
    assert any("pip install -r requirements.txt" in command for command in ran)
    assert any("collectstatic" in command for command in ran)
    assert [command.split()[0] for command, result in image.steps if result is None] == ["useradd"]
    manifest = json.loads((image.workdir / "staticfiles" / "staticfiles.json").read_text())
    assert manifest["paths"], "collectstatic collected nothing"


def test_the_image_carries_no_secret_in_its_environment(image: Image) -> None:
    assert not {"SECRET_KEY", "TOKEN_ENCRYPTION_KEYS", "DATABASE_URL"} & set(image.env)


def test_the_image_refuses_to_start_without_its_secrets(image: Image) -> None:
    env = {**image.env, "PATH": image.path_env(), "DEBUG": "false", "SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "x"}
    result = subprocess.run(
        ["python", "manage.py", "check"], cwd=image.workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "TOKEN_ENCRYPTION_KEYS must be set when DEBUG is off." in result.stderr


# -- docker-compose.yml ----------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = variables.get(name)
        if op in (":?", "?") and not current:
            raise AssertionError(f"compose refuses to start: {arg}")
        if op in (":-", "-") and not current:
            return arg or ""
        return current or ""

    return INTERPOLATION.sub(one, value)


def compose_file() -> dict[str, Any]:
    parsed = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(parsed, dict)
    return parsed


def test_the_compose_file_is_well_formed() -> None:
    """What ``docker compose config`` would refuse: an unknown dependency, a service with neither an
    image nor a build, a command that is not a list, an undeclared volume, a required variable."""
    compose = compose_file()
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        if "command" in service:
            assert isinstance(service["command"], list) and all(isinstance(w, str) for w in service["command"]), name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on an unknown service {dependency}"
            assert condition["condition"] in ("service_started", "service_healthy", "service_completed_successfully")
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
        for mount in service.get("volumes") or []:
            assert mount.split(":")[0] in volumes, f"{name} mounts an undeclared volume {mount}"
        for key, value in (service.get("environment") or {}).items():
            assert isinstance(value, str), f"{name}: {key} must be a string in compose"
    with pytest.raises(AssertionError, match=r"set SECRET_KEY in \.env"):
        app_services({})
    # One worker service per queue, every queue a task is sent to; each scales (no fixed name or
    # published port); beat and Flower once.
    workers = {name: service for name, service in services.items() if "worker" in service.get("command", [])}
    queues = [service["command"][service["command"].index("-Q") + 1] for service in workers.values()]
    assert sorted(queues) == known_queues()
    assert all("," not in queue for queue in queues)
    for service in workers.values():
        assert "container_name" not in service and "ports" not in service
    assert services["flower"]["image"].count(":") == 1 and not services["flower"]["image"].endswith(":latest")
    flower = " ".join(services["flower"]["command"])
    assert "--basic-auth=${FLOWER_BASIC_AUTH:?" in flower
    assert all(port.startswith("127.0.0.1:") for port in services["flower"]["ports"])


def app_services(dotenv: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The services built from this repository, with their environment interpolated."""
    services = {}
    for name, service in compose_file()["services"].items():
        if not service.get("build"):
            continue
        env = {key: interpolate(value, dotenv) for key, value in service["environment"].items()}
        services[name] = {"command": [interpolate(word, dotenv) for word in service["command"]], "environment": env}
    return services


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def scratch_database() -> Iterator[str]:
    import psycopg

    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("postgresql"):
        pytest.skip("the compose stack runs on PostgreSQL")
    name = f"{db['NAME']}_compose"
    params = {"host": db["HOST"] or "localhost", "port": db["PORT"] or 5432, "user": db["USER"],
              "password": db["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    yield f"postgres://{auth}@{params['host']}:{params['port']}/{name}"
    with psycopg.connect(**params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def service_env(image: Image, compose_env: dict[str, str], database_url: str) -> dict[str, str]:
    env = {**image.env, **compose_env, "PATH": image.path_env(), "HOME": str(image.root / "home")}
    # compose's service hosts, pointed at this machine's servers (the module's docstring).
    env["DATABASE_URL"] = database_url
    env["REDIS_URL"] = settings.REDIS_URL or "redis://127.0.0.1:6379/2"
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    for path in ("MEDIA_ROOT", "MAIL_SPOOL_DIR", "PROMETHEUS_MULTIPROC_DIR"):  # the image's own folders
        env[path] = str(image.root / compose_env[path].lstrip("/"))
        Path(env[path]).mkdir(parents=True, exist_ok=True)
    if env.get("WORKER_METRICS_PORT"):
        env["WORKER_METRICS_PORT"] = str(free_port())
    return env


def wait_for_output(process: subprocess.Popen[bytes], needle: str, timeout: float) -> str:
    """Read the process's output until ``needle`` appears; fail if it exits or takes too long."""
    seen = b""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            seen += chunk
            if needle.encode() in seen:
                return seen.decode(errors="replace")
        elif process.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared:\n" + seen.decode(errors="replace")[-3000:])


def test_the_compose_services_run_in_the_image(image: Image, scratch_database: str) -> None:
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the compose stack's broker is Redis")
    services = app_services(COMPOSE_DOTENV)
    assert set(services) >= {"migrate", "web", "beat"}
    env = service_env(image, services["web"]["environment"], scratch_database)

    check = subprocess.run(["python", "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                           cwd=image.workdir, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr

    migrate = subprocess.run(services["migrate"]["command"], cwd=image.workdir,
                             env=service_env(image, services["migrate"]["environment"], scratch_database),
                             capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    unapplied = subprocess.run(["python", "manage.py", "migrate", "--check"], cwd=image.workdir, env=env,
                               capture_output=True, text=True, timeout=300)
    assert unapplied.returncode == 0, unapplied.stdout + unapplied.stderr

    port = free_port()
    command = [word.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for word in services["web"]["command"]]
    web = subprocess.Popen(command, cwd=image.workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_output(web, "Booting worker", timeout=60)
        status, body = None, {}
        deadline = time.monotonic() + 30
        while status is None and time.monotonic() < deadline:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz",
                                             headers={"Host": "localhost", "X-Forwarded-Proto": "https"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, body = response.status, json.loads(response.read())
            except urllib.error.HTTPError as refused:
                status, body = refused.code, json.loads(refused.read())
            except OSError:
                time.sleep(0.5)
        # No worker or beat runs yet: the database and the broker answer, the rest is reported down.
        assert status == 503, status
        assert body["checks"]["database"]["status"] == "ok"
        assert body["checks"]["broker"]["status"] == "ok"
        assert "beat" in body["down"]
    finally:
        web.terminate()
        web.wait(timeout=30)

    for name, ready in (("beat", "beat: Starting..."), *((n, "ready.") for n in services if "worker" in n)):
        process_env = service_env(image, services[name]["environment"], scratch_database)
        process = subprocess.Popen(services[name]["command"], cwd=image.workdir, env=process_env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_for_output(process, ready, timeout=90)
            if process_env.get("WORKER_METRICS_PORT"):  # the worker serves its own metrics
                url = f"http://127.0.0.1:{process_env['WORKER_METRICS_PORT']}/metrics"
                with urllib.request.urlopen(url, timeout=10) as response:
                    assert response.status == 200
        finally:
            process.terminate()
            process.wait(timeout=30)
