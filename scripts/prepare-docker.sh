#!/usr/bin/env bash
# Make this machine able to build and run the bookstore images, then say how to build them.
#
#   eval "$(scripts/prepare-docker.sh)"      # prepare, and export the settings (.ci/run too)
#   scripts/prepare-docker.sh --env-file F    # also write them as KEY=VALUE lines to F
#
# Steps, each skipped when already done (the script is safe to run again):
#   1. a Docker client that can build with BuildKit: Debian's docker.io (apt) when no client
#      here can (none at all, or only a Docker 23+ client without buildx);
#   2. a running engine: start dockerd in the background when `docker info` fails;
#   3. a Python base image: the default from versions.toml ([python].base_image) when it is
#      present or can be pulled; otherwise one built locally with debootstrap + `docker import`
#      (machines with no container registry, like this project's CI);
#   4. the settings the image builds need, printed as `export` lines on stdout:
#      BOOKSTORE_BASE_IMAGE, BOOKSTORE_EXTRA_CA (a CA bundle handed to pip as a BuildKit
#      secret, for networks that intercept TLS), BOOKSTORE_DOCKER (the client chosen by
#      labconfig/docker_client.py after any install: one that can do BuildKit builds) and
#      DOCKER_BUILDKIT=1.
# Everything meant for a human goes to stderr, so stdout stays safe to `eval`.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_BASE_IMAGE="${BOOKSTORE_LOCAL_BASE_IMAGE:-local/python-base:bookworm}"
DEBIAN_SUITE="bookworm"
DEBIAN_MIRROR="${BOOKSTORE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKERD_LOG="${BOOKSTORE_DOCKERD_LOG:-/tmp/bookstore-dockerd.log}"
DOCKERD_DEADLINE_S="${BOOKSTORE_DOCKERD_DEADLINE_S:-90}"
SYSTEM_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt"
ENV_FILE=""

say() { printf 'prepare-docker: %s\n' "$*" >&2; }
die() {
  printf 'prepare-docker: ERROR: %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
}

while (($#)); do
  case "$1" in
    --env-file)
      [[ $# -ge 2 ]] || die "--env-file needs a path" "example: $0 --env-file .ci/docker.env"
      ENV_FILE="$2"
      shift 2
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument: $1" "usage: $0 [--env-file PATH]" ;;
  esac
done

# Installing packages, starting dockerd and debootstrap need root; use sudo only if it needs
# no password (CI has no terminal to type one into).
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "'$*' needs root, and sudo is not available without a password." \
      "Run this script as root: sudo $0"
  fi
}

apt_install() {
  command -v apt-get >/dev/null ||
    die "$1 is missing and this is not a Debian-like system (no apt-get)." \
      "Install $1 with your system's package manager, then run this script again."
  if [[ -z ${APT_UPDATED:-} ]]; then
    say "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  say "installing Debian package(s): $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "$@" >&2
}

# The client is chosen by the project's one rule (labconfig/docker_client.py, shared with the
# tests and the lab engine): LAB_DOCKER/BOOKSTORE_DOCKER, else a client whose buildx works, else
# a pre-23 classic client such as Debian's 20.10 /usr/bin/docker. It runs after every install,
# so a newer client without buildx that was on PATH first is never picked over docker.io.
select_docker_client() {
  (cd "$REPO_ROOT" && python3 -m labconfig.docker_client --why)
}

# 1. Docker client and engine ------------------------------------------------------------------
if ! DOCKER="$(select_docker_client)"; then
  command -v apt-get >/dev/null ||
    die "no docker client on this machine can build the images with BuildKit (see above)." \
      "Expected a client whose buildx works, or a classic client older than Docker 23." \
      "Install the buildx plugin or Docker Desktop, then run this script again."
  say "no usable docker client yet: installing Debian's docker.io (a client that builds with BuildKit)"
  apt_install docker.io
  hash -r
  DOCKER="$(select_docker_client)" ||
    die "after installing docker.io there is still no docker client that can build with BuildKit (see above)." \
      "Set BOOKSTORE_DOCKER to a client that can, then run this script again."
fi

# 2. A running engine -------------------------------------------------------------------------
if "$DOCKER" info >/dev/null 2>&1; then
  say "Docker engine is running ($("$DOCKER" version --format '{{.Server.Version}}' 2>/dev/null))"
else
  if ! command -v dockerd >/dev/null && [[ ! -x /usr/sbin/dockerd ]]; then
    apt_install docker.io
    hash -r
    DOCKER="$(select_docker_client)" || die "no usable docker client after installing docker.io."
  fi
  DOCKERD="$(command -v dockerd || echo /usr/sbin/dockerd)"
  if pgrep -x dockerd >/dev/null; then
    say "dockerd is already starting; waiting for it"
  else
    say "starting dockerd in the background (log: $DOCKERD_LOG)"
    # setsid + nohup: the engine outlives this script and the CI step that ran it.
    as_root setsid nohup "$DOCKERD" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  deadline=$((SECONDS + DOCKERD_DEADLINE_S))
  until info_error="$("$DOCKER" info 2>&1 >/dev/null)"; do
    if [[ $info_error == *"permission denied"* ]]; then
      die "the Docker engine runs, but this user may not use its socket: $info_error" \
        "Add yourself to the docker group (sudo usermod -aG docker \"\$USER\", then log in" \
        "again) or run this script and the tests as root."
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
      die "the Docker engine did not answer 'docker info' within ${DOCKERD_DEADLINE_S}s." \
        "Last answer of docker info: ${info_error:-(nothing)}" \
        "Expected dockerd to start; its log is $DOCKERD_LOG (last lines above)." \
        "Fix what the log says, or start Docker yourself, then run this script again."
    fi
    sleep 1
  done
  say "Docker engine is up after $((DOCKERD_DEADLINE_S - (deadline - SECONDS)))s"
fi

# 3. A Python base image ----------------------------------------------------------------------
# versions.toml is read only through labconfig.versions (the project's single reader).
DEFAULT_BASE_IMAGE="$(
  cd "$REPO_ROOT" &&
    python3 -c 'from labconfig.versions import load_versions; print(load_versions()["python"]["base_image"])'
)" || die "could not read [python].base_image from $REPO_ROOT/versions.toml." \
  "Expected python3 >= 3.11 on PATH (tomllib) and the repository checked out."

image_present() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

build_local_base_image() {
  command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] || apt_install debootstrap
  local rootfs
  rootfs="$(mktemp -d /var/tmp/python-base-rootfs.XXXXXX)"
  # The rootfs holds device nodes and root-owned files: remove it as root whatever happens.
  trap 'as_root rm -rf "$rootfs"' EXIT
  say "building $LOCAL_BASE_IMAGE with debootstrap ($DEBIAN_SUITE from $DEBIAN_MIRROR, ~1 min)"
  local log="${rootfs}.log"
  as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    die "debootstrap failed (last lines above, full log: $log)." \
      "Expected to download $DEBIAN_SUITE packages from $DEBIAN_MIRROR." \
      "Set BOOKSTORE_DEBIAN_MIRROR to a reachable Debian mirror and run this script again."
  }
  rm -f "$log"
  # Package caches and logs only make the image bigger.
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/* "$rootfs"/debootstrap
  as_root tar -C "$rootfs" -c . | "$DOCKER" import \
    --message "python3 on Debian $DEBIAN_SUITE (debootstrap minbase) for bookstore/Dockerfile" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    - "$LOCAL_BASE_IMAGE" >/dev/null
  as_root rm -rf "$rootfs"
  trap - EXIT
  say "built $LOCAL_BASE_IMAGE ($("$DOCKER" run --rm "$LOCAL_BASE_IMAGE" python3 --version))"
}

if [[ -n ${BOOKSTORE_BASE_IMAGE:-} ]]; then
  BASE_IMAGE="$BOOKSTORE_BASE_IMAGE"
  image_present "$BASE_IMAGE" || "$DOCKER" pull "$BASE_IMAGE" >&2 ||
    die "BOOKSTORE_BASE_IMAGE=$BASE_IMAGE is neither present nor pullable." \
      "Unset it to let this script pick or build a base image."
  say "using base image $BASE_IMAGE (from BOOKSTORE_BASE_IMAGE)"
elif image_present "$DEFAULT_BASE_IMAGE"; then
  BASE_IMAGE="$DEFAULT_BASE_IMAGE"
  say "using base image $BASE_IMAGE (present)"
elif "$DOCKER" pull "$DEFAULT_BASE_IMAGE" >/dev/null 2>&1; then
  BASE_IMAGE="$DEFAULT_BASE_IMAGE"
  say "using base image $BASE_IMAGE (pulled)"
else
  say "cannot pull $DEFAULT_BASE_IMAGE (no registry reachable); using a local base instead"
  BASE_IMAGE="$LOCAL_BASE_IMAGE"
  if image_present "$BASE_IMAGE"; then
    say "using base image $BASE_IMAGE (built earlier)"
  else
    build_local_base_image
  fi
fi

# 4. Settings for the image builds ------------------------------------------------------------
# A network that intercepts TLS puts its CA into the host's bundle, never into a fresh image;
# pip inside `docker build` trusts it only when handed the bundle (as the `extra_ca` secret).
EXTRA_CA="${BOOKSTORE_EXTRA_CA:-}"
if [[ -z $EXTRA_CA && -s $SYSTEM_CA_BUNDLE ]]; then
  EXTRA_CA="$SYSTEM_CA_BUNDLE"
fi
if [[ -n $EXTRA_CA && ! -s $EXTRA_CA ]]; then
  die "BOOKSTORE_EXTRA_CA=$EXTRA_CA is not a readable, non-empty file." \
    "Point it at a PEM CA bundle, or unset it."
fi

settings=(
  "BOOKSTORE_BASE_IMAGE=$BASE_IMAGE"
  "BOOKSTORE_EXTRA_CA=$EXTRA_CA"
  "BOOKSTORE_DOCKER=$DOCKER"
  "DOCKER_BUILDKIT=1"
)
for kv in "${settings[@]}"; do
  printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
done
if [[ -n $ENV_FILE ]]; then
  mkdir -p "$(dirname "$ENV_FILE")"
  printf '%s\n' "${settings[@]}" >"$ENV_FILE"
  say "wrote $ENV_FILE"
fi
say "ready: build with"
say "  DOCKER_BUILDKIT=1 $DOCKER build --file bookstore/Dockerfile --build-arg SERVICE=catalog \\"
say "    --build-arg BASE_IMAGE=$BASE_IMAGE${EXTRA_CA:+ --secret id=extra_ca,src=$EXTRA_CA} \\"
say "    --tag bookstore/catalog:0.1.0 ."
