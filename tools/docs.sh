#!/usr/bin/env bash
# Build the documentation site from nbs/ into _site/ (open _site/index.html); see tools/docs.py for the steps.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python tools/docs.py "$@"
