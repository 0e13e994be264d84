#!/usr/bin/env bash
# README's set-up command: everything the package, its notebooks and its tests need, on a fresh machine.
#   1. Chromium from Debian for the browser tests (apt-get install chromium), when it is missing;
#   2. torch, torchvision and the package with its dev extras (nbdev, pytest, Sphinx, myst-nb, Playwright, Voila, ...)
#      and the optional Ray extra;
#   3. MathJax and the ipywidgets embedder that the documentation site serves itself (npm ci in docs/).
# Playwright drives Debian's chromium: never run `playwright install`, which downloads a browser of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then   # CHROMIUM: a browser you already have
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); elif command -v sudo >/dev/null 2>&1; then apt_get=(sudo apt-get); else apt_get=(); fi
  if [ ${#apt_get[@]} -gt 0 ]; then
    echo "== chromium (apt-get)"
    "${apt_get[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq chromium >/dev/null
    chromium --version 2>/dev/null || true
  else
    echo "chromium is missing and apt-get needs root: install it (apt-get install chromium) for the browser tests"
  fi
fi

echo "== Python packages (pip)"
pip install torch==2.14.1 torchvision==0.29.1 -e ".[dev,ray]"

echo "== the site's JavaScript (npm ci in docs/)"
(cd docs && npm ci --ignore-scripts --no-audit --no-fund)
