"""Reads an extracted config-2 drive with cloud-init's own reader and prints, as
JSON, what cloud-init found: uuid, hostname, keys, user data, injected files and
the network config that convert_net_json makes of network_data.json."""
import json
import sys

from cloudinit.sources.helpers import openstack

drive = openstack.ConfigDriveReader(sys.argv[1]).read_v2()
md = drive["metadata"]
net = openstack.convert_net_json(
    drive["networkdata"],
    known_macs={"fa:16:3e:00:00:01": "eth0", "fa:16:3e:00:00:02": "eth1"},
)
print(json.dumps({
    "version": drive["version"],
    "uuid": md["uuid"],
    "hostname": md["hostname"],
    "keys": md["public_keys"],
    "admin_pass": md.get("admin_pass"),
    "userdata": drive["userdata"].decode(),
    "files": {k: v.decode() for k, v in drive["files"].items()},
    "ec2_instance_id": drive["ec2-metadata"]["instance-id"],
    "vendordata": drive["vendordata"],
    "network": net,
}, sort_keys=True))
