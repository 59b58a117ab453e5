#!/bin/sh
# Benchmark: the static release `guest-agent` on an ISO config drive (whole process:
# find, read, plan, apply under --root), beside cloud-init's own reader,
# `ConfigDriveReader(DIR).read_v2()` (Debian's cloud-init through /usr/bin/python3),
# reading the same drive extracted to a folder. All in one hyperfine run, so the
# machine's load is the same for every command. Measured:
#   first run   `run --root` into an empty root each time: writes every file
#   repeat run  `run --root` into a root the agent already configured: compares,
#               writes nothing (every boot after the first)
#   show        reading and parsing only, like cloud-init's reader
# Prints mean and median of each (the median is steadier on a shared disk: fsync
# waits behind other programs' writes) and cloud-init's time divided by ours.
# Needs hyperfine, genisoimage and cloud-init (scripts/packages.txt): checked up front
# by scripts/check-tools, which names the package of a missing one.
#
#   guest-agent/benches/vs-cloud-init.sh [instance.json] [min-runs]
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
instance=${1:-$here/compute/tests/fixtures/multinic.json}
runs=${2:-40}
target=x86_64-unknown-linux-gnu
agent=$here/target/$target/release/guest-agent
compute=$here/target/debug/compute

cd "$here"
scripts/check-tools cargo hyperfine genisoimage py:cloudinit
RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --release -p guest-agent --target $target
# Only renders the drive's files: a debug build of the `compute` command does.
cargo build -q -p compute-cli --bin compute

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$compute" render --instance "$instance" --out "$work/tree" >/dev/null 2>&1
genisoimage -o "$work/cd.iso" -ldots -allow-lowercase -allow-multidot -l -quiet -J -r -V config-2 "$work/tree" 2>/dev/null

reader="from cloudinit.sources.helpers.openstack import ConfigDriveReader; ConfigDriveReader('$work/tree').read_v2()"
/usr/bin/python3 -c "$reader" || { echo "vs-cloud-init.sh: Debian's cloud-init does not import with /usr/bin/python3 (scripts/packages.txt)" >&2; exit 1; }

# The repeat run's root, configured once; the benchmark checks it stays unchanged.
mkdir "$work/configured"
"$agent" run --device "$work/cd.iso" --root "$work/configured" --format json >/dev/null
find "$work/configured" -exec stat -c '%n %i %s %a %u:%g %y %z' {} + | sort >"$work/before"

hyperfine -N --warmup 3 --min-runs "$runs" --export-json "$work/result.json" \
    --prepare "sh -c 'rm -rf $work/root && mkdir $work/root'" \
    -n "guest-agent first run" "$agent run --device $work/cd.iso --root $work/root --format json" \
    --prepare "true" \
    -n "guest-agent repeat run" "$agent run --device $work/cd.iso --root $work/configured --format json" \
    --prepare "true" \
    -n "guest-agent show" "$agent show --device $work/cd.iso --format json" \
    --prepare "true" \
    -n "cloud-init ConfigDriveReader" "/usr/bin/python3 -c \"$reader\"" >&2

find "$work/configured" -exec stat -c '%n %i %s %a %u:%g %y %z' {} + | sort >"$work/after"
if ! cmp -s "$work/before" "$work/after"; then
    echo "vs-cloud-init.sh: the repeat runs changed files:" >&2
    diff "$work/before" "$work/after" >&2 || true
    exit 1
fi

/usr/bin/python3 - "$work/result.json" "$agent" <<'PY'
import json, os, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ci = r["cloud-init ConfigDriveReader"]
ci_mean, ci_median = ci["mean"] * 1000, ci["median"] * 1000
print(f"{'':38} {'mean ms':>9} {'median ms':>10} {'cloud-init / ours':>18}")
for name in ("guest-agent first run", "guest-agent repeat run", "guest-agent show"):
    mean, median = r[name]["mean"] * 1000, r[name]["median"] * 1000
    print(f"{name:38} {mean:9.2f} {median:10.2f} {ci_median / median:8.1f}x median {ci_mean / mean:6.1f}x mean")
print(f"{'cloud-init ConfigDriveReader (folder)':38} {ci_mean:9.2f} {ci_median:10.2f}")
print(f"static binary size: {os.path.getsize(sys.argv[2])} bytes")
PY
