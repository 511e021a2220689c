# Sourced by scripts/install-*.sh: apt_install NAME PACKAGE… installs Debian packages with
# apt-get (as root, or through sudo), prefixing what it says with NAME. Only Debian's packages
# are used: this network reaches them and npm, nothing else.
apt_install() {
  local name="$1"
  shift
  local sudo=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "${name}: not root and no sudo; install Debian's $* by hand" >&2
      exit 1
    fi
  fi
  echo "${name}: running apt-get update"
  $sudo apt-get update -qq
  echo "${name}: installing $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
