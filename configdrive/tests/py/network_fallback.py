"""Reads an extracted config-2 drive with cloud-init's reader and asks cloud-init's
ConfigDrive datasource what network config it has, as JSON: whether read_v2 found
network_data.json, the datasource's network_config (None: cloud-init falls back to
DHCP on the first NIC), and, for comparison, what an empty `{}` document gives.

The datasource gets the reader's results the way its _get_data hands them over; the
rest of _get_data is not run, since it writes the drive's injected files to /."""
import json
import sys
import tempfile

from cloudinit import helpers
from cloudinit.sources import DataSourceConfigDrive
from cloudinit.sources.helpers import openstack

drive = openstack.ConfigDriveReader(sys.argv[1]).read_v2()

with tempfile.TemporaryDirectory() as state:
    paths = helpers.Paths({"cloud_dir": state, "run_dir": state})
    ds = DataSourceConfigDrive.DataSourceConfigDrive({}, None, paths)
    ds.network_eni = drive.get("network_config")
    ds.network_json = drive.get("networkdata")
    # The guest's NICs: one per link MAC, named in link order.
    links = (drive.get("networkdata") or {}).get("links", [])
    macs = [link["ethernet_mac_address"] for link in links]
    ds.known_macs = {mac: "eth%d" % i for i, mac in enumerate(macs)}
    print(json.dumps({
        "uuid": drive["metadata"]["uuid"],
        "read_v2_has_networkdata": "networkdata" in drive,
        "network_config": ds.network_config,
        "empty_document_config": openstack.convert_net_json({}),
    }, sort_keys=True))
