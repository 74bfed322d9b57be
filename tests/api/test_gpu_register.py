"""Request shapes of the GPU lease registers: a PCI mapping's update sends its `map` back
exactly as read, the digest it read, and the description on one line (pve-manager
PVE/API2/Cluster/Mapping/PCI.pm `update` runs check_config with the create flag, and
SectionConfig::check_value refuses a line feed)."""

from __future__ import annotations

from urllib.parse import parse_qs

import responses
from pve_testing import API, schema_violations

from provision.gpu.record import LeaseRecord, parse_records, write_record
from provision.gpu.register import MappingRegister, NodeNotesRegister, from_one_line, one_line

MAP = [
    "node=pve2,path=0000:41:00,id=10de:2684,iommugroup=40",
    "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12",
]
ITEM = f"{API}/cluster/mapping/pci/rtx4090"


def _form(call) -> dict[str, list[str]]:
    body = call.request.body
    return parse_qs(body if isinstance(body, str) else body.decode(), keep_blank_values=True)


@responses.activate
def test_lease_write_sends_the_map_as_read_the_digest_and_one_line(client):
    responses.get(
        ITEM,
        json={
            "data": {
                "type": "pci",
                "map": MAP,
                "mdev": 0,
                "digest": "d1",
                "description": 'Rack 2 aihost-lease rtx3060: {"holder":7}',
            }
        },
    )
    responses.put(ITEM, json={"data": None})
    register = MappingRegister(client, "rtx4090")
    text, digest = register.read()
    assert text == 'Rack 2\naihost-lease rtx3060: {"holder":7}'
    new = write_record(text, "rtx4090", LeaseRecord(holder=120, holder_name="llm-box"))
    assert register.write(new, digest)
    form = _form(responses.calls[1])
    assert form["map"] == MAP and form["digest"] == ["d1"]
    assert set(form) == {"map", "digest", "description"}  # mdev is kept by not sending it
    (description,) = form["description"]
    assert "\n" not in description and description.startswith("Rack 2 aihost-lease rtx3060: ")
    assert parse_records(from_one_line(description)) == parse_records(new)
    assert schema_violations(responses.calls) == []


@responses.activate
def test_removing_the_last_record_deletes_the_description_and_still_sends_the_map(client):
    responses.get(
        ITEM,
        json={
            "data": {
                "type": "pci",
                "map": MAP,
                "digest": "d1",
                "description": 'aihost-lease rtx4090: {"holder":7}',
            }
        },
    )
    responses.put(ITEM, json={"data": None})
    register = MappingRegister(client, "rtx4090")
    text, digest = register.read()
    assert register.write(write_record(text, "rtx4090", None), digest)
    assert _form(responses.calls[1]) == {"delete": ["description"], "map": MAP, "digest": ["d1"]}
    assert schema_violations(responses.calls) == []


@responses.activate
def test_a_changed_file_is_a_lost_write_not_an_error(client):
    message = (
        "update hardware mapping failed: detected modified configuration - "
        "file changed by other user? Try again."
    )
    responses.get(ITEM, json={"data": {"type": "pci", "map": MAP, "digest": "d1"}})
    responses.put(ITEM, status=500, json={"data": None, "message": message + "\n"})
    register = MappingRegister(client, "rtx4090")
    _, digest = register.read()
    assert register.write("aihost-lease rtx4090: {}", digest) is False


@responses.activate
def test_a_write_with_a_digest_never_read_rereads_and_loses(client):
    responses.get(ITEM, json={"data": {"type": "pci", "map": MAP, "digest": "d2"}})
    assert MappingRegister(client, "rtx4090").write("x", "d1") is False
    assert [c.request.method for c in responses.calls] == ["GET"]


def test_user_text_around_records_in_one_line_stays_the_users():
    description = 'Rack 2 aihost-lease a: {"holder":1} moved in May aihost-lease b: {} end'
    text = from_one_line(description)
    assert text.splitlines() == [
        "Rack 2",
        'aihost-lease a: {"holder":1}',
        "moved in May",
        "aihost-lease b: {}",
        "end",
    ]
    assert set(parse_records(text)) == {"a", "b"}
    assert one_line(write_record(text, "a", None)) == "Rack 2 moved in May aihost-lease b: {} end"


@responses.activate
def test_node_notes_keep_their_lines(client):
    responses.put(f"{API}/nodes/pve1/config", json={"data": None})
    NodeNotesRegister(client, "pve1").write("My node\naihost-lease g: {}\n", "n1")
    assert _form(responses.calls[0]) == {
        "description": ["My node\naihost-lease g: {}\n"],
        "digest": ["n1"],
    }


@responses.activate
def test_gpu_map_update_lost_to_another_mapping_is_reread_and_retried(client):
    from types import SimpleNamespace

    from provision.gpu.mapping import map_gpu
    from provision.gpu.retry import Backoff, Retrier
    from provision.pve.hardware import PciDevice

    changed = (
        "update hardware mapping failed: detected modified configuration - "
        "file changed by other user? Try again."
    )
    old = "node=pve1,path=0000:01:00,id=10de:2204,iommugroup=12"
    for digest in ("d1", "d2"):
        responses.get(
            ITEM,
            json={
                "data": {
                    "type": "pci",
                    "map": [MAP[0], old],
                    "description": "lease",
                    "digest": digest,
                }
            },
        )
    responses.put(ITEM, status=500, json={"data": None, "message": changed + "\n"})
    responses.put(ITEM, json={"data": None})
    card = PciDevice(
        "0000:01:00.0",
        "0x10de",
        "0x2684",
        "0x030000",
        "0x1043",
        "0x889d",
        12,
        "AD102 [GeForce RTX 4090]",
    )
    ctx = SimpleNamespace(
        name="rtx4090", node="pve1", client=client, gpu=SimpleNamespace(mapping="rtx4090")
    )
    slept: list[float] = []
    result = map_gpu(
        ctx,
        card=card,  # type: ignore[arg-type]
        retry=Retrier(Backoff(first=0.1), sleep=slept.append, rand=lambda: 1.0),
    )
    assert result["action"] == "updated" and slept == [0.1]
    puts = [c for c in responses.calls if c.request.method == "PUT"]
    assert [_form(c)["digest"] for c in puts] == [["d1"], ["d2"]]
    new = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"
    assert _form(puts[1]) == {"map": [MAP[0], new], "digest": ["d2"]}  # description kept
    assert schema_violations(responses.calls) == []
