#!/bin/sh
# Lays out the seed inputs of each fuzz target under DIR/<target>/, from the repository's own
# files: ONNX models, TensorProto files, and the text files the config reader reads.
# Usage: harness/fuzz/seeds.sh DIR   (from the repository root)
set -eu
out=${1:?usage: seeds.sh DIR}
for t in onnx_reader tensor_reader config_reader generated_case; do mkdir -p "$out/$t"; done
n=0
copy() { # copy FILE TARGET: named by a counter, so equal names from different cases stay apart
  n=$((n + 1)); cp "$1" "$2/$n-$(basename "$1")"
}
for f in $(find corpus -name '*.onnx'); do copy "$f" "$out/onnx_reader"; done
for f in $(find corpus golden -name '*.pb'); do copy "$f" "$out/tensor_reader"; done
for f in $(find corpus -name 'case.toml') corpus/known-failures.toml reports/baselines/*.json; do
  copy "$f" "$out/config_reader"
done
# The generated case reads its bytes as a random stream: a few arbitrary byte strings.
for i in 1 2 3 4 5 6 7 8; do
  printf '%s' "seed-$i-$(printf '%0*d' "$((i * 8))" 0)" > "$out/generated_case/$i"
done
