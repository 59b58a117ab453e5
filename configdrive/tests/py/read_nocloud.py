"""Reads an extracted NoCloud seed as cloud-init does: meta-data and user-data
through read_seeded, network-config through cloud-init's network state parser."""
import json
import sys

from cloudinit import safeyaml, util
from cloudinit.net import network_state

seed = sys.argv[1].rstrip("/") + "/"
md, ud = util.read_seeded(seed)[:2]
with open(seed + "network-config") as f:
    state = network_state.parse_net_config_data(safeyaml.load(f.read()))
print(json.dumps({
    "metadata": md,
    "userdata": ud.decode(),
    "interfaces": {
        i["name"]: {
            "mac": i.get("mac_address"),
            "addresses": [s.get("address") for s in i["subnets"] if s.get("address")],
            "dhcp": [s["type"] for s in i["subnets"] if s["type"].startswith("dhcp")],
        }
        for i in state.iter_interfaces()
    },
}, sort_keys=True))
