#!/bin/sh
# Usage: embedded_check.sh NM ARCHIVE
# Fails if the archive needs any symbol from outside itself that is not on
# the allow-list below: the freestanding core links against nothing but
# these (docs/EMBEDDING.md, "What the core needs").
#   memcpy memset memmove memcmp   GCC and clang emit calls to these for
#                                  struct copies and loops even in freestanding
#                                  code (GCC manual, -ffreestanding), so every
#                                  embedded C runtime has them
#   bcmp                           clang's form of memcmp(...) == 0, emitted only
#                                  for targets whose C library has it
#   strlen                         factory-string and format parsing; the same
#                                  string.h family, in every C runtime
#   sqrtf                          libm, only where the FPU has no square root
#                                  instruction (-fno-math-errno inlines it
#                                  elsewhere); ivfpq_normalize_l2 and k-means
#   __aeabi_* __*di3 __*si2 ...    the compiler's own runtime (libgcc,
#                                  compiler-rt): 64-bit division and
#                                  float/int64 conversions on 32-bit targets
set -eu
nm=$1 ar=$2
[ -f "$ar" ] || { echo "embedded-check: $ar does not exist" >&2; exit 2; }
tmp=${TMPDIR:-/tmp}/embcheck.$$
trap 'rm -f "$tmp".u "$tmp".d' EXIT
"$nm" -u "$ar" | awk 'NF == 2 && $1 == "U" { print $2 }' | sort -u > "$tmp.u"
"$nm" -g --defined-only "$ar" | awk 'NF == 3 { print $3 }' | sort -u > "$tmp.d"
bad=0
for s in $(comm -23 "$tmp.u" "$tmp.d"); do
  case $s in
    memcpy|memset|memmove|memcmp|bcmp|strlen|sqrtf) echo "  ok   $s" ;;
    __aeabi_*|__udivdi3|__umoddi3|__divdi3|__moddi3|__udivmoddi4|__divmoddi4|\
    __fix*|__float*|__clz?i2|__ctz?i2|__popcount?i2) echo "  ok   $s (compiler runtime)" ;;
    *) echo "  BAD  $s"; bad=1 ;;
  esac
done
if [ $bad = 1 ]; then
  echo "embedded-check: $ar needs symbols outside the allow-list (see $0)" >&2
  exit 1
fi
echo "embedded-check: $ar: only allowed external symbols"
