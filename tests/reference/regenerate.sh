#!/usr/bin/env bash
# Re-runs every reference script with the R found on PATH into a temporary
# folder and compares the output with the committed fixtures (check_drift.py).
# Usage: tests/reference/regenerate.sh [--write]   (--write replaces the fixtures)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
Rscript "$here/datasets.R" "$tmp" >/dev/null
for script in "$here"/*.R; do
  name="$(basename "$script" .R)"
  case "$name" in _common|datasets) continue ;; esac
  (cd "$here" && Rscript "$script" "$tmp" "$tmp/datasets" >/dev/null)
done
if [ "${1:-}" = "--write" ]; then
  cp "$tmp"/*.csv "$here"/ 2>/dev/null || true
  cp "$tmp"/datasets/*.csv "$here"/datasets/
  echo "fixtures rewritten from R"
else
  python "$here/check_drift.py" "$tmp" "$here"
fi
