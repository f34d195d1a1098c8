#!/bin/bash -eu
# Builds the fuzz targets into $OUT with their seed corpora and the ledger the generated-case
# target judges by (run by ClusterFuzzLite's build_fuzzers inside .clusterfuzzlite/Dockerfile).
cd "$SRC/conv1d-harness"
(cd harness && cargo fuzz build -O)
seeds=$(mktemp -d)
harness/fuzz/seeds.sh "$seeds"
for target in onnx_reader tensor_reader config_reader generated_case; do
  cp "harness/fuzz/target/x86_64-unknown-linux-gnu/release/$target" "$OUT/"
  (cd "$seeds/$target" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
done
cp corpus/known-failures.toml "$OUT/"
