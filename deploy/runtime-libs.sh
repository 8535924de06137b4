#!/usr/bin/env bash
# Collects the shared libraries that BINARIES load into OUT, for a runtime image without the
# -dev packages' dependency trees (docs/deployment.md, "Image size").
#
#   deploy/runtime-libs.sh OUT BINARY...
#
# Why by hand: Debian's LibTorch links (without --as-needed) OpenCV, FFmpeg, LMDB, LevelDB, ZeroMQ
# and OpenCL although libtorch_cpu uses no symbol of theirs; installing its runtime packages pulls
# those and their own trees (GDAL, Qt, Mesa, LLVM: 1.42 GB). Here every library in the closure is
# copied, and a NEEDED entry that provides none of the library's undefined symbols is removed
# (patchelf), which is safe because nothing can bind to it (LibTorch's own libraries are kept
# whatever: they register operators from static constructors, a use no symbol shows); then the closure is computed again
# and what is no longer loaded is dropped. glibc and the C++ runtime are left out (the Dockerfile's
# rootfs stage adds them).
set -euo pipefail
out=$1
shift
mkdir -p "$out"

closure() {  # the resolved libraries the binaries load, given the libraries already in $out
  LD_LIBRARY_PATH="$out" ldd "$@" | awk '/=> \// {print $1, $3}' | sort -u
}
base_image_lib() {  # glibc, libstdc++ and libgcc_s: the Dockerfile's rootfs stage copies them
  case $1 in
    ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libstdc++.so*|libgcc_s.so*) return 0 ;;
  esac
  return 1
}
# Dynamic symbols NAME defines / leaves undefined (version suffixes removed).
defined() { nm -D --defined-only "$1" 2>/dev/null | awk '{print $3}' | sed 's/@.*//' | sort -u; }
undefined() { nm -D --undefined-only "$1" 2>/dev/null | awk '{print $2}' | sed 's/@.*//' | sort -u; }

closure "$@" | while read -r soname path; do
  base_image_lib "$soname" || cp -L "$path" "$out/$soname"
done
for lib in "$out"/*; do
  needed=$(readelf -d "$lib" | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}')
  undefined "$lib" > /tmp/runtime-libs.undefined
  drop=()
  for n in $needed; do
    base_image_lib "$n" && continue
    case $n in libtorch*|libc10*) continue ;; esac  # LibTorch's own: they register operators when loaded
    provider=$out/$n
    [ -e "$provider" ] || continue
    [ -n "$(defined "$provider" | comm -12 - /tmp/runtime-libs.undefined | head -1)" ] || drop+=(--remove-needed "$n")
  done
  if ((${#drop[@]})); then
    chmod u+w "$lib"
    patchelf "${drop[@]}" "$lib"
    echo "runtime-libs: $(basename "$lib"): removed unused dependencies ${drop[*]//--remove-needed/}" >&2
  fi
done
keep=$(closure "$@" | awk '{print $1}')
for lib in "$out"/*; do
  grep -qxF "$(basename "$lib")" <<<"$keep" || rm "$lib"
done
rm -f /tmp/runtime-libs.undefined
echo "runtime-libs: $(ls "$out" | wc -l) libraries, $(du -sh "$out" | cut -f1)" >&2
