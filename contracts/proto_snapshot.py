"""The wire shape of `lightfm.v2025_9` as plain JSON, and the rules for comparing two of them.

`python -m contracts.proto_snapshot --write` refreshes contracts/lightfm.v2025_9.descriptor.json
from the generated stubs; do that only for a deliberate, reviewed change (the compatibility test
then compares against the new snapshot). Without `--write` it prints the breaking changes
between the committed snapshot and the current stubs and exits 1 when there are any.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

SNAPSHOT_PATH = Path(__file__).with_name("lightfm.v2025_9.descriptor.json")

Snapshot = dict[str, Any]


def snapshot_of(file: descriptor_pb2.FileDescriptorProto) -> Snapshot:
    """The parts of a FileDescriptorProto that decide the wire format and the RPC names."""

    def message(proto: descriptor_pb2.DescriptorProto, prefix: str) -> dict[str, Any]:
        full = f"{prefix}.{proto.name}"
        found = {
            full: {
                "fields": {
                    field.name: {
                        "number": field.number,
                        "type": descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
                        "type_name": field.type_name,
                        "label": descriptor_pb2.FieldDescriptorProto.Label.Name(field.label),
                    }
                    for field in proto.field
                }
            }
        }
        for nested in proto.nested_type:
            found.update(message(nested, full))
        return found

    messages: dict[str, Any] = {}
    for proto in file.message_type:
        messages.update(message(proto, f".{file.package}"))
    services = {
        f"{file.package}.{service.name}": {
            "methods": {
                method.name: {
                    "input_type": method.input_type,
                    "output_type": method.output_type,
                    "client_streaming": method.client_streaming,
                    "server_streaming": method.server_streaming,
                }
                for method in service.method
            }
        }
        for service in file.service
    }
    return {"file": file.name, "package": file.package, "messages": messages, "services": services}


def current_snapshot() -> Snapshot:
    from proto.lightfm.v2025_9 import recommender_pb2

    file = descriptor_pb2.FileDescriptorProto()
    recommender_pb2.DESCRIPTOR.CopyToProto(file)
    return snapshot_of(file)


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Every change from `old` to `new` that breaks a peer built against `old`: a message,
    field, service or method removed or renamed, a field renumbered, retyped or relabelled,
    a method's input/output type or streaming changed. Additions are not listed."""
    problems: list[str] = []
    if old.get("package") != new.get("package"):
        problems.append(f"package renamed: {old.get('package')} -> {new.get('package')}")
    new_messages: Mapping[str, Any] = new.get("messages", {})
    for name, message in old.get("messages", {}).items():
        if name not in new_messages:
            problems.append(f"message {name} removed or renamed")
            continue
        new_fields: Mapping[str, Any] = new_messages[name]["fields"]
        by_number = {spec["number"]: field for field, spec in new_fields.items()}
        for field, spec in message["fields"].items():
            where = f"{name}.{field}"
            if field not in new_fields:
                other = by_number.get(spec["number"])
                renamed = f" (number {spec['number']} is now {other!r})" if other else ""
                problems.append(f"field {where} removed or renamed{renamed}")
                continue
            now = new_fields[field]
            for key in ("number", "type", "type_name", "label"):
                if spec[key] != now[key]:
                    problems.append(f"field {where} {key} changed: {spec[key]} -> {now[key]}")
    problems.extend(_service_changes(old.get("services", {}), new.get("services", {})))
    return problems


def _service_changes(old: Mapping[str, Any], new_services: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, service in old.items():
        if name not in new_services:
            problems.append(f"service {name} removed or renamed")
            continue
        new_methods: Mapping[str, Any] = new_services[name]["methods"]
        for method, spec in service["methods"].items():
            where = f"{name}.{method}"
            if method not in new_methods:
                problems.append(f"method {where} removed or renamed")
                continue
            for key, value in spec.items():
                if new_methods[method].get(key) != value:
                    problems.append(
                        f"method {where} {key} changed: {value} -> {new_methods[method].get(key)}"
                    )
    return problems


def render(snapshot: Snapshot) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="overwrite the committed snapshot")
    args = parser.parse_args(argv)
    current = current_snapshot()
    if args.write:
        SNAPSHOT_PATH.write_text(render(current), encoding="utf-8")
        print(f"wrote {SNAPSHOT_PATH}")  # noqa: T201
        return 0
    problems = breaking_changes(json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8")), current)
    for problem in problems:
        print(problem)  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
