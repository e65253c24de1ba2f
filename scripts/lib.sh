# Shared by scripts/setup, scripts/models, scripts/run, scripts/test and bench/setup-*: where the
# cache is, how a stage reports its time, and how a Python venv is made. Source it; it runs nothing.
#
#   OCCUR_CACHE   everything set-up makes: models, venvs, samples, tools (default ~/.cache/occur)
#   OCCUR_MODELS  the model files (default $OCCUR_CACHE/models)

OCCUR_CACHE="${OCCUR_CACHE:-$HOME/.cache/occur}"
OCCUR_MODELS="${OCCUR_MODELS:-$OCCUR_CACHE/models}"

# stage LABEL COMMAND...: runs COMMAND and prints how long it took, as "<label>: 12 s" (also on failure).
stage() {
  local label=$1 start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  if [ $rc -eq 0 ]; then
    printf '\033[1mtime:\033[0m %s took %d s\n' "$label" $((SECONDS - start)) >&2
  else
    printf '\033[1mtime:\033[0m %s FAILED after %d s (exit %d)\n' "$label" $((SECONDS - start)) $rc >&2
  fi
  return $rc
}

# The build tools every venv gets before anything else, whatever pip and setuptools the machine's
# Python happens to ship (pyenv's 3.11.7 brings pip 23.2.1 and setuptools 65.5.0 and no wheel, so
# an sdist's metadata step fails with "invalid command 'bdist_wheel'"). Pinned by sha256.
VENV_BUILD_TOOLS=(
  "pip==24.3.1 --hash=sha256:3790624780082365f47549d032f3770eeb2b1e8bd1f7b2e02dace1afa361b4ed"
  "setuptools==75.8.0 --hash=sha256:e3982f444617239225d675215d51f6ba05f845d4eec313da4418fdbb56fb27e3"
  "wheel==0.45.1 --hash=sha256:708e7481cc80179af0e556bbf0cc00b8444c7321e2700b8d8580231d13017248"
)

# python_venv DIR [PYTHON]: makes DIR a venv (if it is not one) whose pip, setuptools and wheel are
# the pinned ones. Every sdist is then fetched from it with --no-build-isolation, so a build never
# pulls an unpinned tool from PyPI. Returns non-zero with a message on failure.
python_venv() {
  local dir=$1 py=${2:-python3} marker="$1/.occur-build-tools" want req
  want="${VENV_BUILD_TOOLS[*]}"
  [ -x "$dir/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && return 0
  if [ ! -x "$dir/bin/python" ]; then
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    "$py" -m venv "$dir" || { echo "$py -m venv $dir failed (on Debian: apt-get install python3-venv)" >&2; return 1; }
  fi
  req="$(mktemp)"
  printf '%s\n' "${VENV_BUILD_TOOLS[@]}" > "$req"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary :all: \
    --require-hashes -r "$req" >&2 || { rm -f "$req"; echo "pip install of the build tools into $dir failed" >&2; return 1; }
  rm -f "$req"
  echo "$want" > "$marker"
}
