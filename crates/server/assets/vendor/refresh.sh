#!/usr/bin/env bash
# Refreshes the vendored map outlines of the dashboard from the npm registry, at a pinned
# version: world-atlas (ISC), a TopoJSON build of Natural Earth's 1:110m countries (public
# domain). Nothing here runs at build time; the fetched files are committed.
# Usage: crates/server/assets/vendor/refresh.sh
set -euo pipefail
cd "$(dirname "$0")"
version=2.0.2
sha256=032e7765f2ce00edaeafec23ff22bc3b77e42987c257da944cc585b452c05b97  # of the tarball, checked below
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "https://registry.npmjs.org/world-atlas/-/world-atlas-$version.tgz" -o "$tmp/pkg.tgz"
got=$(sha256sum "$tmp/pkg.tgz" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
  echo "world-atlas-$version.tgz: sha256 $got, expected $sha256 (update the pin deliberately)" >&2
  exit 1
fi
tar -xzf "$tmp/pkg.tgz" -C "$tmp"
cp "$tmp/package/countries-110m.json" countries-110m.json
cp "$tmp/package/LICENSE" world-atlas.LICENSE
echo "world-atlas $version: countries-110m.json ($(wc -c < countries-110m.json) bytes)"
