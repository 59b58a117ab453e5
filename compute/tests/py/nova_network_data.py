"""Prints the network_data.json bytes Nova writes for a network, given the instance
document's `network` object (JSON, on standard input).

An oracle written from the facts of Nova's nova/virt/netutils.py
(get_network_metadata): the top-level keys are links, networks, services; a link is
id, vif_id, type, mtu, ethernet_mac_address; an ipv4_dhcp or ipv6_dhcp network is
only id, type, link, network_id (no address, netmask, routes or services, whatever
Nova knows of the port); every other network is id, type, link, ip_address, netmask,
routes, network_id, services; a route is network, netmask, gateway; a service is
type, address. Nova serialises with json.dumps defaults. Keys the document leaves
out stay out; a key Nova never writes is an error."""
import json
import sys

LINK = ["id", "vif_id", "type", "mtu", "ethernet_mac_address"]
DHCP = ["id", "type", "link", "network_id"]
OTHER = ["id", "type", "link", "ip_address", "netmask", "routes", "network_id", "services"]
ROUTE = ["network", "netmask", "gateway"]
SERVICE = ["type", "address"]


def ordered(obj, keys, what, drop=()):
    extra = set(obj) - set(keys) - set(drop)
    if extra:
        sys.exit("%s has keys Nova never writes: %s" % (what, sorted(extra)))
    return {k: obj[k] for k in keys if k in obj}


def network(n):
    if n["type"] in ("ipv4_dhcp", "ipv6_dhcp"):
        return ordered(n, DHCP, "a DHCP network", drop=("ip_address", "netmask"))
    out = ordered(n, OTHER, "a network")
    if "routes" in out:
        out["routes"] = [ordered(r, ROUTE, "a route") for r in out["routes"]]
    if "services" in out:
        out["services"] = [ordered(s, SERVICE, "a service") for s in out["services"]]
    return out


doc = json.load(sys.stdin)
nova = {
    "links": [ordered(link, LINK, "a link") for link in doc.get("links", [])],
    "networks": [network(n) for n in doc.get("networks", [])],
    "services": [ordered(s, SERVICE, "a service") for s in doc.get("services", [])],
}
sys.stdout.write(json.dumps(nova))
