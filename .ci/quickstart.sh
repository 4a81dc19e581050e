#!/usr/bin/env bash
# Builds examples/quickstart — an out-of-tree crate depending on `kiln-nn = "0.1"` as a
# crates.io user would — against the `.crate` files `cargo package` wrote to
# target/package/, and runs it with the checkout's data/ moved away and an empty data
# cache: the bundled MNIST and IMDB must come from the packaged kiln-data crate.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work="$(mktemp -d)"
aside="$root/.data-aside-$$"
restore() { if [ -d "$aside" ]; then mv "$aside" "$root/data"; fi; rm -rf "$work"; }
trap restore EXIT

mkdir -p "$work/crates" "$work/quickstart"
cp -r examples/quickstart/. "$work/quickstart/"
patches=()
for crate in target/package/*.crate; do
  tar xzf "$crate" -C "$work/crates"
  dir="$(basename "$crate" .crate)"   # kiln-nn-0.1.0
  name="${dir%-*}"                     # kiln-nn
  patches+=(--config "patch.crates-io.$name.path=\"$work/crates/$dir\"")
done
[ ${#patches[@]} -gt 0 ] || { echo "no .crate files in target/package: run cargo package first" >&2; exit 1; }

mv "$root/data" "$aside"
KILN_DATA_DIR="$work/cache" KILN_OFFLINE=1 CARGO_TARGET_DIR="$root/target" \
  cargo run --release --quiet --manifest-path "$work/quickstart/Cargo.toml" "${patches[@]}"
test -s "$work/cache/bundled-0.1.0/mnist-10k/train-images-idx3-ubyte.gz"
echo "quickstart: trained on the packaged bundled data (data/ absent)"
