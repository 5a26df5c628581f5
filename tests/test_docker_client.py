"""The one rule that picks the docker client (labconfig.docker_client), with fake clients.

Each fake is a tiny shell script on a temporary PATH. What they answer is what the real clients
answer: `docker --version` prints "Docker version X, build Y" whatever the daemon does;
`docker buildx version` exits 0 only when the buildx plugin is installed, otherwise Docker 23+
says "docker: unknown command: docker buildx" and 20.10 says "'buildx' is not a docker command"
(both exit non-zero; observed with Docker 28.2.2 and Debian's 20.10.24 on the CI machine, and
docker/cli's plugin manager, cli-plugins/manager). A pre-23 client builds with BuildKit under
DOCKER_BUILDKIT=1 on its own (docker/cli v20.10 cli/command/image/build_buildkit.go); 23+ hands
BuildKit builds to buildx (Docker 23.0.0 release notes, docker/cli#3314).

The fresh-machine order is tested through scripts/prepare-docker.sh itself with a fake apt-get
that "installs" docker.io: the client is chosen after the install, never before it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from labconfig import docker_client
from labconfig.docker_client import NoUsableClient, select_client
from labconfig.versions import REPO_ROOT


def fake_client(path: Path, version: str, buildx: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buildx_answer = (
        'echo "github.com/docker/buildx v0.14.1 59582a4"; exit 0'
        if buildx
        else "echo \"docker: 'buildx' is not a docker command.\" >&2; exit 1"
    )
    path.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f'  --version) echo "Docker version {version}, build 0000000" ;;\n'
        f"  buildx) {buildx_answer} ;;\n"
        # Enough of the engine for prepare-docker.sh: info, version, image inspect succeed.
        "  info|image) exit 0 ;;\n"
        f'  version) echo "{version}" ;;\n'
        '  *) echo "fake docker: unexpected $*" >&2; exit 9 ;;\n'
        "esac\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def env_for(*dirs: Path, debian: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(map(str, dirs))
    return {"PATH": path, "BOOKSTORE_DEBIAN_DOCKER": str(debian), **extra}


def test_a_client_whose_buildx_works_wins_over_a_classic_one(tmp_path):
    classic = fake_client(tmp_path / "a" / "docker", "20.10.24+dfsg1", buildx=False)
    modern = fake_client(tmp_path / "b" / "docker", "28.2.2", buildx=True)
    choice = select_client(env_for(classic.parent, modern.parent, debian=tmp_path / "none"))
    assert choice.path == str(modern)
    assert "buildx works" in choice.reason


def test_a_newer_client_without_buildx_is_passed_over_for_debians_classic_client(tmp_path):
    # The CI machine: /usr/local/bin/docker (28.x, no buildx) first on PATH, /usr/bin/docker
    # (Debian's 20.10) later.
    newer = fake_client(tmp_path / "local" / "docker", "28.2.2", buildx=False)
    debian = fake_client(tmp_path / "debian" / "docker", "20.10.24+dfsg1", buildx=False)
    choice = select_client(env_for(newer.parent, debian=debian))
    assert choice.path == str(debian)
    assert "DOCKER_BUILDKIT=1" in choice.reason


def test_only_a_newer_client_without_buildx_is_an_error_that_names_it_and_the_fix(tmp_path):
    newer = fake_client(tmp_path / "local" / "docker", "28.2.2", buildx=False)
    with pytest.raises(NoUsableClient) as err:
        select_client(env_for(newer.parent, debian=tmp_path / "none"))
    text = str(err.value)
    assert f"{newer} (28.2.2; buildx missing)" in text
    assert "docker-buildx" in text and "prepare-docker.sh" in text


def test_no_client_at_all_says_where_it_looked_and_how_to_get_one(tmp_path):
    with pytest.raises(NoUsableClient) as err:
        select_client(env_for(tmp_path, debian=tmp_path / "none"))
    assert "no docker client was found" in str(err.value)
    assert str(tmp_path / "none") in str(err.value)


def test_an_explicit_client_is_used_as_given_and_lab_docker_comes_first(tmp_path):
    newer = fake_client(tmp_path / "local" / "docker", "28.2.2", buildx=False)
    other = fake_client(tmp_path / "other" / "docker", "28.2.2", buildx=True)
    env = env_for(other.parent, debian=tmp_path / "none", BOOKSTORE_DOCKER=str(newer))
    assert select_client(env).path == str(newer)
    env["LAB_DOCKER"] = str(other)
    assert select_client(env) == docker_client.Choice(str(other), "LAB_DOCKER names it")


def test_an_explicit_client_that_does_not_exist_is_an_error_naming_the_variable(tmp_path):
    env = env_for(tmp_path, debian=tmp_path / "none", BOOKSTORE_DOCKER=str(tmp_path / "nope"))
    with pytest.raises(NoUsableClient, match="BOOKSTORE_DOCKER=.*not an executable"):
        select_client(env)


def test_the_same_client_reached_twice_is_asked_once(tmp_path):
    # /bin/docker and /usr/bin/docker are one file on a merged-/usr system.
    real = fake_client(tmp_path / "usr" / "bin" / "docker", "20.10.24", buildx=False)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "docker").symlink_to(real)
    env = env_for(tmp_path / "bin", real.parent, debian=real)
    assert docker_client.candidates(env) == [str(tmp_path / "bin" / "docker")]


def test_the_cli_prints_the_path_on_stdout_and_the_error_with_exit_1(tmp_path):
    debian = fake_client(tmp_path / "debian" / "docker", "20.10.24", buildx=False)
    run = [sys.executable, "-m", "labconfig.docker_client", "--why"]
    base = {"PYTHONPATH": str(REPO_ROOT), "BOOKSTORE_DEBIAN_DOCKER": str(debian)}
    ok = subprocess.run(run, env={**base, "PATH": str(tmp_path)}, capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, f"{debian}\n")
    base["BOOKSTORE_DEBIAN_DOCKER"] = str(tmp_path / "none")
    bad = subprocess.run(run, env={**base, "PATH": str(tmp_path)}, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout == ""
    assert "no docker client was found" in bad.stderr


# -- the fresh-machine order, through scripts/prepare-docker.sh ---------------------------------

# What prepare-docker.sh calls besides docker and apt-get, taken from this machine.
HOST_TOOLS = ("bash", "env", "dirname", "sed", "mkdir", "cat", "tail", "pgrep", "rm", "chmod")


def _fresh_machine(tmp_path: Path, *, preinstalled: str | None) -> tuple[dict[str, str], Path]:
    """A PATH with only the host tools, maybe a docker already there, and a fake apt-get that
    installs Debian's client (20.10, no buildx) where the rule looks for it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in HOST_TOOLS:
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True)
        (bin_dir / tool).symlink_to(found.stdout.strip())
    (bin_dir / "python3").symlink_to(sys.executable)
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    if preinstalled:
        fake_client(tmp_path / "local-bin" / "docker", preinstalled, buildx=False)
    debian = tmp_path / "usr-bin" / "docker"
    template = fake_client(tmp_path / "debs" / "docker", "20.10.24+dfsg1", buildx=False)
    log = tmp_path / "apt.log"
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\n"
        f'echo "apt-get $*" >> "{log}"\n'
        'case " $* " in *" install "*docker.io*)\n'
        f'  mkdir -p "{debian.parent}" && cat "{template}" > "{debian}" && chmod 755 "{debian}";;\n'
        "esac\n"
    )
    (bin_dir / "apt-get").chmod(0o755)
    # dockerd "exists" so the engine step does not install again.
    (bin_dir / "dockerd").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "dockerd").chmod(0o755)
    env = {
        "PATH": f"{tmp_path / 'local-bin'}:{bin_dir}",
        "HOME": str(tmp_path),
        "BOOKSTORE_DEBIAN_DOCKER": str(debian),
        "BOOKSTORE_BASE_IMAGE": "local/python-base:bookworm",
        "BOOKSTORE_EXTRA_CA": "",
    }
    return env, log


def _prepare(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "prepare-docker.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prepare_docker_installs_docker_io_first_then_picks_its_client(tmp_path):
    # The failure this rule exists for: a Docker 28 client without buildx was on PATH, the
    # script exported it before installing docker.io, and every image build failed.
    env, log = _fresh_machine(tmp_path, preinstalled="28.2.2")
    done = _prepare(env)
    assert done.returncode == 0, done.stderr
    assert "install -y -qq --no-install-recommends docker.io" in log.read_text()
    assert f"export BOOKSTORE_DOCKER={env['BOOKSTORE_DEBIAN_DOCKER']}\n" in done.stdout


def test_prepare_docker_on_a_machine_with_no_client_installs_and_picks_it(tmp_path):
    env, log = _fresh_machine(tmp_path, preinstalled=None)
    done = _prepare(env)
    assert done.returncode == 0, done.stderr
    assert "docker.io" in log.read_text()
    assert f"export BOOKSTORE_DOCKER={env['BOOKSTORE_DEBIAN_DOCKER']}\n" in done.stdout


def test_prepare_docker_installs_nothing_when_a_usable_client_is_there(tmp_path):
    env, log = _fresh_machine(tmp_path, preinstalled="20.10.24+dfsg1")
    done = _prepare(env)
    assert done.returncode == 0, done.stderr
    assert not log.exists()
    assert f"export BOOKSTORE_DOCKER={tmp_path / 'local-bin' / 'docker'}\n" in done.stdout
