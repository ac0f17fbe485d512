#!/usr/bin/env bash
# Create .venv/ in the project root and install sentsim into it (editable), with the CPU build of torch.
#   bash scripts/install.sh          # the library and its CLI
#   bash scripts/install.sh demo     # ... plus the Gradio demo (the README's main job)
#   bash scripts/install.sh dev      # ... plus the test tools and every optional part the tests cover
# A second run is quick: nothing is reinstalled while pyproject.toml, constraints.txt and the extras are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
case "$extras" in
  "") spec="." ;;
  dev) spec=".[dev]" ;;
  *) spec=".[$extras]" ;;
esac
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "sentsim: creating .venv with $("$py" --version)"
  "$py" -m venv .venv
fi
stamp=.venv/.sentsim-install-$(echo "$spec" | tr -c 'a-z0-9' '_')
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/sentsim ]; then
  echo "sentsim: .venv is up to date ($spec)"
  exit 0
fi
echo "sentsim: installing $spec into .venv (CPU build of torch)"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e "$spec"
echo "$want" > "$stamp"
echo "sentsim: installed"
