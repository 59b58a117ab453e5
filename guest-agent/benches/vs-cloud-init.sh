#!/bin/sh
# Benchmark: `guest-agent run --root` on an ISO config drive (whole process: find,
# read, plan, apply), beside cloud-init's ConfigDriveReader reading the same drive
# extracted to a folder (Debian's cloud-init, /usr/bin/python3). Prints both means
# and the ratio. Needs hyperfine, genisoimage and cloud-init (scripts/packages.txt).
#
#   guest-agent/benches/vs-cloud-init.sh [instance.json]
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
instance=${1:-$here/compute/tests/fixtures/multinic.json}
target=x86_64-unknown-linux-gnu
agent=$here/target/$target/release/guest-agent
compute=$here/target/release/compute

cd "$here"
scripts/check-tools cargo hyperfine genisoimage py:cloudinit
RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --release -p guest-agent --target $target
cargo build -q --release -p compute

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$compute" render --instance "$instance" --out "$work/tree" 2>/dev/null
genisoimage -o "$work/cd.iso" -ldots -allow-lowercase -allow-multidot -l -quiet -J -r -V config-2 "$work/tree" 2>/dev/null

reader="from cloudinit.sources.helpers.openstack import ConfigDriveReader; ConfigDriveReader('$work/tree').read_v2()"
/usr/bin/python3 -c "$reader"   # fail loudly here if cloud-init is missing

hyperfine -N --warmup 3 --min-runs 30 --export-json "$work/result.json" \
    --prepare "sh -c 'rm -rf $work/root && mkdir $work/root'" \
    -n "guest-agent run --root (ISO)" "$agent run --device $work/cd.iso --root $work/root --format json" \
    -n "guest-agent show (ISO)" "$agent show --device $work/cd.iso --format json" \
    -n "cloud-init ConfigDriveReader (folder)" "/usr/bin/python3 -c \"$reader\"" >&2

/usr/bin/python3 - "$work/result.json" "$agent" <<'PY'
import json, os, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
run, show, ci = (r[k]["mean"] * 1000 for k in (
    "guest-agent run --root (ISO)", "guest-agent show (ISO)", "cloud-init ConfigDriveReader (folder)"))
print(f"guest-agent run --root on ISO:        {run:8.2f} ms (mean)")
print(f"guest-agent show on ISO (read only):  {show:8.2f} ms (mean)")
print(f"cloud-init ConfigDriveReader (folder):{ci:8.2f} ms (mean)")
print(f"ratio cloud-init / guest-agent run:   {ci / run:8.1f}x")
print(f"static binary size: {os.path.getsize(sys.argv[2])} bytes")
PY
