#!/usr/bin/env bash
# Installs the Debian packages loragraph's tests and tools use: chromium (editor tests), ffmpeg (video
# frames), redis-server (the Redis job queue's tests and bench:queue) and Mesa's software Vulkan from
# bookworm-backports (the WebGPU EP without a GPU).
# Idempotent: does nothing when everything is already there. Needs root (or sudo) and Debian's mirrors.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need+=(vulkan)
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "loragraph: missing system packages (${need[*]}); run this script as root" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
if [ -r /etc/os-release ] && grep -q bookworm /etc/os-release && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium ffmpeg fonts-dejavu-core redis-server >/dev/null
if grep -rqs bookworm-backports /etc/apt/sources.list.d/; then
  $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports libvulkan1 mesa-vulkan-drivers >/dev/null
else
  $SUDO apt-get install -y -qq --no-install-recommends libvulkan1 mesa-vulkan-drivers >/dev/null
fi
echo "loragraph: system packages installed"
