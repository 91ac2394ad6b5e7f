"""Compares durable-emu's own TaskHubSidecarService contract with the one the official Python SDK
(durabletask==1.12.0, unmodified) was generated from.

Usage: check_proto.py OURS.bin, where OURS.bin is durable-emu's encoded FileDescriptorSet
(``durable_emu_grpc::FILE_DESCRIPTOR_SET``). Every message, field, enum value and rpc that
durable-emu defines must exist in the SDK's descriptor with the same number, type, label and
message/enum type, and the same request/response types and streaming: those are facts of the wire
format. The SDK's file may define more (newer messages durable-emu does not serve yet): they are
listed, not failed. Prints ``PASS check_proto`` or ``FAIL check_proto: ...`` with every mismatch.
"""

from __future__ import annotations

import sys

from google.protobuf import descriptor_pb2

from durabletask.internal import orchestrator_service_pb2 as official_pb2


def official_file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    official_pb2.DESCRIPTOR.CopyToProto(proto)
    return proto


def ours_file(path: str) -> descriptor_pb2.FileDescriptorProto:
    with open(path, "rb") as f:
        files = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file
    for file in files:
        if any(service.name == "TaskHubSidecarService" for service in file.service):
            return file
    raise SystemExit("FAIL check_proto: no file in OURS.bin defines TaskHubSidecarService")


def messages(file: descriptor_pb2.FileDescriptorProto) -> dict[str, descriptor_pb2.DescriptorProto]:
    found: dict[str, descriptor_pb2.DescriptorProto] = {}

    def walk(prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}{message.name}"
        found[name] = message
        for nested in message.nested_type:
            if not nested.options.map_entry:
                walk(f"{name}.", nested)

    for message in file.message_type:
        walk("", message)
    return found


def enums(file: descriptor_pb2.FileDescriptorProto) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}

    def add(prefix: str, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        found[f"{prefix}{enum.name}"] = {value.name: value.number for value in enum.value}

    for enum in file.enum_type:
        add("", enum)
    for name, message in messages(file).items():
        for enum in message.enum_type:
            add(f"{name}.", enum)
    return found


def type_name(field: descriptor_pb2.FieldDescriptorProto, package: str) -> str:
    # Both files have no package; normalise ".X" and ".pkg.X" to "X".
    name = field.type_name.lstrip(".")
    if package and name.startswith(package + "."):
        name = name[len(package) + 1:]
    return name


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: check_proto.py OURS.bin", file=sys.stderr)
        return 2
    ours, theirs = ours_file(sys.argv[1]), official_file()
    problems: list[str] = []
    our_messages, their_messages = messages(ours), messages(theirs)
    for name, message in our_messages.items():
        other = their_messages.get(name)
        if other is None:
            problems.append(f"message {name} is not in the SDK's contract")
            continue
        their_fields = {field.name: field for field in other.field}
        for field in message.field:
            official = their_fields.get(field.name)
            if official is None:
                problems.append(f"{name}.{field.name} is not a field of the SDK's {name}")
                continue
            for what in ("number", "type", "label"):
                if getattr(field, what) != getattr(official, what):
                    problems.append(
                        f"{name}.{field.name}: {what} {getattr(field, what)} here, "
                        f"{getattr(official, what)} in the SDK")
            if type_name(field, ours.package) != type_name(official, theirs.package):
                problems.append(
                    f"{name}.{field.name}: type {field.type_name} here, {official.type_name} in the SDK")
            ours_oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
            their_oneof = other.oneof_decl[official.oneof_index].name if official.HasField("oneof_index") else None
            if ours_oneof != their_oneof and not (field.proto3_optional or official.proto3_optional):
                problems.append(f"{name}.{field.name}: oneof {ours_oneof} here, {their_oneof} in the SDK")
    their_enums = enums(theirs)
    for name, values in enums(ours).items():
        other = their_enums.get(name)
        if other is None:
            problems.append(f"enum {name} is not in the SDK's contract")
            continue
        for value, number in values.items():
            if other.get(value) != number:
                problems.append(f"{name}.{value} = {number} here, {other.get(value)} in the SDK")
    their_services = {service.name: service for service in theirs.service}
    for service in ours.service:
        other = their_services.get(service.name)
        if other is None:
            problems.append(f"service {service.name} is not in the SDK's contract")
            continue
        their_methods = {method.name: method for method in other.method}
        for method in service.method:
            official = their_methods.get(method.name)
            if official is None:
                problems.append(f"rpc {service.name}.{method.name} is not in the SDK's contract")
                continue
            for what in ("input_type", "output_type", "client_streaming", "server_streaming"):
                if getattr(method, what) != getattr(official, what):
                    problems.append(
                        f"rpc {method.name}: {what} {getattr(method, what)!r} here, "
                        f"{getattr(official, what)!r} in the SDK")
        missing = sorted(set(their_methods) - {method.name for method in service.method})
        if missing:
            print(f"note: rpcs in the SDK's contract that durable-emu does not define: {missing}")
    if ours.package != theirs.package:
        problems.append(f"package {ours.package!r} here, {theirs.package!r} in the SDK")
    if problems:
        print("FAIL check_proto: " + f"{len(problems)} mismatch(es):\n  " + "\n  ".join(problems))
        return 1
    print(f"PASS check_proto ({len(our_messages)} messages, "
          f"{sum(len(m.field) for m in our_messages.values())} fields, "
          f"{len(enums(ours))} enums, {sum(len(s.method) for s in ours.service)} rpcs match the SDK's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
