#!/usr/bin/env bash
# Fetches the tree-sitter C runtime and the language grammars hearth's index uses, from their npm
# packages, at pinned versions, verifying each tarball against its pinned sha512 integrity (the
# `dist.integrity` npm reports). Only the generated C sources (src/parser.c, scanners), the
# headers and queries/*.scm are kept; nothing is executed. Output: third_party_fetch/grammars/.
#
# Why the runtime comes from npm too: Debian 12's libtree-sitter 0.20.7 only loads grammar ABI
# 13-14, while current grammars are generated for ABI 14-15. The `tree-sitter` npm package (the
# node binding) vendors the matching C runtime (vendor/tree-sitter/lib, one lib.c), so runtime and
# grammars are pinned together and always agree.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=third_party_fetch/grammars
dl=third_party_fetch/npm-tarballs

# package@version  sha512 integrity
pins=(
  "tree-sitter@0.25.1 sha512-mrcEdkYtHfrK1A6fs3O6FxkBo0Qig5XUXqHhxUOQu0bmPo00QF4XaSx4edpazdHwxnSCjlGKGgIqWdaN4dvTLA=="
  "tree-sitter-c@0.24.1 sha512-lkYwWN3SRecpvaeqmFKkuPNR3ZbtnvHU+4XAEEkJdrp3JfSp2pBrhXOtvfsENUneye76g889Y0ddF2DM0gEDpA=="
  "tree-sitter-cpp@0.23.4 sha512-qR5qUDyhZ5jJ6V8/umiBxokRbe89bCGmcq/dk94wI4kN86qfdV8k0GHIUEKaqWgcu42wKal5E97LKpLeVW8sKw=="
  "tree-sitter-python@0.25.0 sha512-eCmJx6zQa35GxaCtQD+wXHOhYqBxEL+bp71W/s3fcDMu06MrtzkVXR437dRrCrbrDbyLuUDJpAgycs7ncngLXw=="
  "tree-sitter-javascript@0.25.0 sha512-1fCbmzAskZkxcZzN41sFZ2br2iqTYP3tKls1b/HKGNPQUVOpsUxpmGxdN/wMqAk3jYZnYBR1dd/y/0avMeU7dw=="
  "tree-sitter-typescript@0.23.2 sha512-e04JUUKxTT53/x3Uq1zIL45DoYKVfHH4CZqwgZhPg5qYROl5nQjV+85ruFzFGZxu+QeFVbRTPDRnqL9UbU4VeA=="
  "tree-sitter-go@0.25.0 sha512-APBc/Dq3xz/e35Xpkhb1blu5UgW+2E3RyGWawZSCNcbGwa7jhSQPS8KsUupuzBla8PCo8+lz9W/JDJjmfRa2tw=="
  "tree-sitter-rust@0.24.0 sha512-NWemUDf629Tfc90Y0Z55zuwPCAHkLxWnMf2RznYu4iBkkrQl2o/CHGB7Cr52TyN5F1DAx8FmUnDtCy9iUkXZEQ=="
  "tree-sitter-java@0.23.5 sha512-Yju7oQ0Xx7GcUT01mUglPP+bYfvqjNCGdxqigTnew9nLGoII42PNVP3bHrYeMxswiCRM0yubWmN5qk+zsg0zMA=="
  "tree-sitter-ruby@0.23.1 sha512-d9/RXgWjR6HanN7wTYhS5bpBQLz1VkH048Vm3CodPGyJVnamXMGb8oEhDypVCBq4QnHui9sTXuJBBP3WtCw5RA=="
  "tree-sitter-php@0.24.2 sha512-zwgAePc/HozNaWOOfwRAA+3p8yhuehRw8Fb7vn5qd2XjiIc93uJPryDTMYTSjBRjVIUg/KY6pM3rRzs8dSwKfw=="
  "tree-sitter-c-sharp@0.23.5 sha512-xJGOeXPMmld0nES5+080N/06yY6LQi+KWGWV4LfZaZe6srJPtUtfhIbRSN7EZN6IaauzW28v6W4QHFwmeUW6HQ=="
  "tree-sitter-bash@0.25.1 sha512-7hMytuYIMoXOq24yRulgIxthE9YmggZIOHCyPTTuJcu6EU54tYD+4G39cUb28kxC6jMf/AbPfWGLQtgPTdh3xw=="
)

stamp_text=$(printf '%s\n' "${pins[@]}")
if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp_text" ]; then
  exit 0  # already fetched at these pins
fi

command -v npm >/dev/null || { echo "fetch-grammars: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dl"
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
for pin in "${pins[@]}"; do
  spec=${pin%% *}
  want=${pin#* }
  name=${spec%@*}
  version=${spec##*@}
  tgz="$dl/$name-$version.tgz"
  if [ ! -f "$tgz" ]; then
    echo "fetch-grammars: npm pack $spec"
    (cd "$dl" && npm pack --silent "$spec" >/dev/null)
  fi
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [ "$got" != "$want" ]; then
    echo "fetch-grammars: integrity mismatch for $spec: got $got, pinned $want" >&2
    rm -f "$tgz"
    exit 1
  fi
  mkdir -p "$dest.tmp/$name"
  # Sources, headers and queries only: no prebuilt binaries, no wasm.
  tar -xzf "$tgz" -C "$dest.tmp/$name" --strip-components=1 --wildcards \
    --exclude='*/prebuilds/*' --exclude='*.wasm' --exclude='*/bindings/*' \
    '*.c' '*.h' '*.cc' '*.scm' 'package/LICENSE' 2>/dev/null || true
done
printf '%s\n' "$stamp_text" >"$dest.tmp/.stamp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "fetch-grammars: ${#pins[@]} packages in $dest"
