#!/usr/bin/env bash
# Builds the optional oneDNN addon (native/dnnl/tessera_dnnl.cc) into native/build/, when Debian's libdnnl-dev and a C++
# compiler are here; says why not and exits 0 otherwise (Node workers then run the wasm kernels alone). Nothing is downloaded.
#   bash native/build.sh            # build if missing or older than its source
#   bash native/build.sh --force    # rebuild
set -euo pipefail
cd "$(dirname "$0")"
source_file=dnnl/tessera_dnnl.cc
target=build/tessera_dnnl.node
if [[ "${1:-}" != --force && -f $target && $target -nt $source_file ]]; then exit 0; fi
node_headers=$(node -p "require('path').join(process.execPath, '../../include/node')")
missing=()
[[ -f /usr/include/oneapi/dnnl/dnnl.hpp ]] || missing+=("oneDNN headers (apt-get install libdnnl-dev)")
[[ -f $node_headers/node_api.h ]] || missing+=("Node's headers ($node_headers/node_api.h)")
command -v g++ > /dev/null || missing+=("g++")
if ((${#missing[@]} > 0)); then
  echo "native/build.sh: not building the oneDNN kernels, missing: ${missing[*]}" >&2
  exit 0
fi
mkdir -p build
g++ -O2 -std=c++17 -shared -fPIC -Wall -I"$node_headers" -DNODE_GYP_MODULE_NAME=tessera_dnnl "$source_file" -o "$target.tmp" -ldnnl -fopenmp
mv "$target.tmp" "$target"
echo "native/build.sh: built native/$target"
