#!/usr/bin/env bash
# The setup step of `make demo`, `make test` (and so of `.ci/run`): give the machine the Debian packages the lessons
# and the tests need when they are missing and apt can install them. Otherwise it changes nothing and exits 0: the
# loaders (miniai.data, miniai.text) and the docs tests raise their errors saying how to get what is missing.
#
#   tools/get_data.sh [--dry-run] [--browser] [PACKAGE...]
#
# dataset-fashion-mnist: Fashion-MNIST, every lesson.        fortunes: the texts of lesson 16.
# dict-gcide, wordnet-base, anarchism: the general English corpus of lesson 17a (miniai.corpus).
# --browser: chromium too, when no Chromium is found ($CHROMIUM, chromium, chromium-browser, google-chrome,
#   google-chrome-stable): tests/test_docs.py looks at the docs in it. `make test` passes this.
# PACKAGE...: more Debian packages to install in the same apt run.
# --dry-run: print what would be installed and how, install nothing.
# apt is usable when apt-get exists and we are root or have passwordless sudo (`sudo -n`): nothing here ever asks
# for a password. The folders searched are those of the loaders; MINIAI_FMNIST_SYSTEM_DIR and
# MINIAI_FORTUNES_SYSTEM_DIR replace the Debian folders (for tests only).
set -uo pipefail

dry=0
browser=0
extra=()
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    --browser) browser=1 ;;
    -*) echo "get_data.sh: unknown option $a (use --dry-run or --browser)" >&2; exit 2 ;;
    *) extra+=("$a") ;;
  esac
done

cache="${XDG_CACHE_HOME:-$HOME/.cache}/miniai"
fmnist_sys="${MINIAI_FMNIST_SYSTEM_DIR:-/usr/share/datasets/fashion-mnist}"
fortunes_sys="${MINIAI_FORTUNES_SYSTEM_DIR:-/usr/share/games/fortunes}"

have_fmnist() {
  for d in "${MINIAI_DATA:-}" "$cache/fashion-mnist" "$fmnist_sys"; do
    [ -n "$d" ] && { [ -e "$d/train-images-idx3-ubyte.gz" ] || [ -e "$d/train-images-idx3-ubyte" ]; } && return 0
  done
  return 1
}
# `computers` is one of the categories of lesson 16's task; the small package fortunes-min lacks it.
have_fortunes() {
  for d in "${MINIAI_FORTUNES:-}" "$cache/fortunes" "$fortunes_sys"; do
    [ -n "$d" ] && [ -f "$d/computers" ] && return 0
  done
  return 1
}
# PACKAGE ENV_VAR DEBIAN_FOLDER FILE: the folders of miniai.corpus; MINIAI_CORPUS_SYSTEM_ROOT goes before the Debian folder (tests only).
have_corpus() {
  for d in "${!2:-}" "$cache/corpus/$1" "${MINIAI_CORPUS_SYSTEM_ROOT:-}$3"; do
    [ -n "$d" ] && [ -f "$d/$4" ] && return 0
  done
  return 1
}

# the names tests/chromium.py looks for
have_chromium() {
  for b in "${CHROMIUM:-}" chromium chromium-browser google-chrome google-chrome-stable; do
    [ -n "$b" ] && command -v "$b" >/dev/null 2>&1 && return 0
  done
  return 1
}

pkgs=()
have_fmnist || pkgs+=(dataset-fashion-mnist)
have_fortunes || pkgs+=(fortunes)
have_corpus dict-gcide MINIAI_GCIDE /usr/share/dictd gcide.dict.dz || pkgs+=(dict-gcide)
have_corpus wordnet-base MINIAI_WORDNET /usr/share/wordnet data.noun || pkgs+=(wordnet-base)
have_corpus anarchism MINIAI_ANARCHISM /usr/share/doc/anarchism/markdown secA1.md.gz || pkgs+=(anarchism)
[ $browser = 1 ] && ! have_chromium && pkgs+=(chromium)
pkgs+=("${extra[@]}")
[ ${#pkgs[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "get_data.sh: missing ${pkgs[*]}; no apt-get on this machine, so nothing is installed (the loaders say how to get the data)"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n)
else
  echo "get_data.sh: missing ${pkgs[*]}; not root and no passwordless sudo, so nothing is installed." \
       "Run: sudo apt-get install ${pkgs[*]}"
  exit 0
fi

# apt's progress goes to /dev/null; its errors still show.
run() {
  if [ $dry = 1 ]; then echo "would run: $*"; else "$@" >/dev/null; fi
}
echo "== installing ${pkgs[*]} (Debian packages)"
run "${sudo[@]}" apt-get update -q || echo "get_data.sh: apt-get update failed; trying the install anyway"
for p in "${pkgs[@]}"; do
  run env DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "$p" \
    || echo "get_data.sh: apt-get could not install $p"
done
exit 0
