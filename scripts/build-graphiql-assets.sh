#!/usr/bin/env bash
# Build the self-hosted GraphiQL assets the gateway serves at /graphiql.
#
# Why: the stock GraphiQL page loads React, GraphiQL and the explorer plugin from
# a CDN, which breaks on machines without internet access. We fetch the exact
# package versions once, at build time, with the machine's own npm (so whatever
# registry/mirror npm is configured for is used), and copy only the files the
# page needs into a gitignored directory. Nothing is downloaded at run time.
#
# Usage: scripts/build-graphiql-assets.sh [OUTPUT_DIR]
#   OUTPUT_DIR defaults to gateway/http/static/graphiql under the repository root.
#
# Re-running is cheap: if OUTPUT_DIR/manifest.json already records the pinned
# versions and every file it lists is present, the script exits without
# touching npm's network side.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
out_dir="${1:-${repo_root}/gateway/http/static/graphiql}"

# Pinned to the versions Strawberry's stock GraphiQL page uses, so both pages
# behave the same; every one of them still ships the UMD/dist builds we need.
# Format: "npm-name version directory-name-in-output".
packages=(
  "react 18.2.0 react"
  "react-dom 18.2.0 react-dom"
  "graphiql 3.8.3 graphiql"
  "@graphiql/plugin-explorer 1.0.2 graphiql-plugin-explorer"
)

# Files copied per package: "npm-name role source-path-in-package output-file-name".
# Roles are what gateway/http/graphiql.py looks up in the manifest; "license" files are
# shipped alongside because the MIT licenses require the notice to travel with
# the code. @graphiql/plugin-explorer ships no LICENSE file of its own (its
# package.json declares MIT, same monorepo and license as graphiql); its UMD
# bundle inlines graphiql-explorer, whose LICENSE we therefore copy.
files=(
  "react react umd/react.production.min.js react.production.min.js"
  "react license LICENSE LICENSE"
  "react-dom react-dom umd/react-dom.production.min.js react-dom.production.min.js"
  "react-dom license LICENSE LICENSE"
  "graphiql graphiql-js graphiql.min.js graphiql.min.js"
  "graphiql graphiql-css graphiql.min.css graphiql.min.css"
  "graphiql license LICENSE LICENSE"
  "@graphiql/plugin-explorer explorer-js dist/index.umd.js index.umd.js"
  "@graphiql/plugin-explorer explorer-css dist/style.css style.css"
  "@graphiql/plugin-explorer license node_modules/graphiql-explorer/LICENSE LICENSE.graphiql-explorer"
)

die() {
  echo "build-graphiql-assets: error: $*" >&2
  exit 1
}

command -v npm >/dev/null 2>&1 \
  || die "npm was not found on PATH. Install Node.js (which ships npm) and re-run \`make assets\`."
command -v node >/dev/null 2>&1 \
  || die "node was not found on PATH. Install Node.js and re-run \`make assets\`."

# "name@version" list, also the pin fingerprint compared against the manifest.
specs=()
for entry in "${packages[@]}"; do
  read -r name version _ <<<"${entry}"
  specs+=("${name}@${version}")
done

# Fast path: the manifest already records exactly these pins and its files exist.
if [[ -f "${out_dir}/manifest.json" ]]; then
  if node - "${out_dir}" "${specs[@]}" <<'JS'
const fs = require("fs");
const path = require("path");
const [dir, ...specs] = process.argv.slice(2);
try {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
  const want = specs.slice().sort().join(" ");
  const have = Object.entries(manifest.packages || {}).map(([n, v]) => `${n}@${v}`).sort().join(" ");
  const filesOk = Array.isArray(manifest.files) && manifest.files.length > 0 &&
    manifest.files.every((f) => fs.statSync(path.join(dir, f.path)).isFile());
  process.exit(want === have && filesOk ? 0 : 1);
} catch (e) {
  process.exit(1);
}
JS
  then
    echo "build-graphiql-assets: ${out_dir} is up to date (${specs[*]})."
    exit 0
  fi
fi

# Refuse to clobber a directory that is not ours (e.g. a mistyped argument).
if [[ -e "${out_dir}" && ! -f "${out_dir}/manifest.json" ]]; then
  if [[ ! -d "${out_dir}" ]] || [[ -n "$(ls -A "${out_dir}")" ]]; then
    die "${out_dir} exists, is not empty and has no manifest.json; refusing to overwrite it."
  fi
fi

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/graphiql-assets.XXXXXX")"
trap 'rm -rf "${work_dir}"' EXIT
# Assemble the output outside the repo, so an interrupted build leaves no debris.
stage_dir="${work_dir}/out"
mkdir "${stage_dir}"

# A private package.json pins npm's project root to the temp dir, so npm never
# walks up into (and writes a lock file or node_modules in) the repository.
echo '{"name": "graphiql-assets-build", "private": true}' >"${work_dir}/package.json"

echo "build-graphiql-assets: installing ${specs[*]} ..."
# --ignore-scripts: we only copy prebuilt dist files, no install hooks needed.
# --legacy-peer-deps: the explorer plugin's peer ranges lag graphiql's; peers are
# irrelevant here because the UMD bundles resolve each other via globals.
(
  cd "${work_dir}"
  npm install --no-save --no-package-lock --no-audit --no-fund \
    --ignore-scripts --legacy-peer-deps --loglevel=error "${specs[@]}"
)

# Copy the files into <dir>-<version>/ so every URL changes with its version,
# which is what makes the long, immutable HTTP cache lifetime safe.
for entry in "${packages[@]}"; do
  read -r name version dir <<<"${entry}"
  installed="$(node -p 'require(process.argv[1]).version' \
    "${work_dir}/node_modules/${name}/package.json")"
  [[ "${installed}" == "${version}" ]] \
    || die "npm installed ${name}@${installed}, expected ${version}."
  mkdir -p "${stage_dir}/${dir}-${version}"
done

for entry in "${files[@]}"; do
  read -r name _ src dest <<<"${entry}"
  for p in "${packages[@]}"; do
    read -r pname pversion pdir <<<"${p}"
    if [[ "${pname}" == "${name}" ]]; then
      from="${work_dir}/node_modules/${name}/${src}"
      # A dependency's file may have been hoisted to the top level, as Node would find it.
      if [[ ! -e "${from}" && "${src}" == node_modules/* ]]; then
        from="${work_dir}/${src}"
      fi
      [[ -s "${from}" ]] || die "${name}@${pversion} does not contain ${src}."
      cp "${from}" "${stage_dir}/${pdir}-${pversion}/${dest}"
    fi
  done
done

# Write the manifest gateway/http/graphiql.py reads: pinned versions plus one entry per
# file (path relative to the output dir, role, origin and sha384 for auditing).
PACKAGES="$(printf '%s\n' "${packages[@]}")" FILES="$(printf '%s\n' "${files[@]}")" \
  node - "${stage_dir}" "${work_dir}/node_modules" <<'JS'
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const [stage, modules] = process.argv.slice(2);
const rows = (text) => text.trim().split("\n").map((line) => line.split(" "));
const packages = rows(process.env.PACKAGES);
const manifest = { format: 1, packages: {}, licenses: {}, files: [] };
for (const [name, version] of packages) {
  manifest.packages[name] = version;
  const pkg = JSON.parse(fs.readFileSync(path.join(modules, name, "package.json"), "utf8"));
  manifest.licenses[name] = pkg.license || null;
}
for (const [name, role, src, dest] of rows(process.env.FILES)) {
  const [, version, dir] = packages.find(([n]) => n === name);
  const rel = path.posix.join(`${dir}-${version}`, dest);
  const data = fs.readFileSync(path.join(stage, rel));
  const sha384 = "sha384-" + crypto.createHash("sha384").update(data).digest("base64");
  manifest.files.push({ path: rel, role, package: name, version, source: src, bytes: data.length, sha384 });
}
fs.writeFileSync(path.join(stage, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
JS

# Swap the finished build in; the guard above ensures out_dir is ours (or absent).
mkdir -p "$(dirname "${out_dir}")"
rm -rf "${out_dir}"
mv "${stage_dir}" "${out_dir}"
echo "build-graphiql-assets: wrote $(find "${out_dir}" -type f | wc -l) files to ${out_dir}."
