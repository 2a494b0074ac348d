"""What podman 4.9's Quadlet (DGX OS, Ubuntu 24.04) accepts, from shared/reference/quadlet-podman49.md."""

from __future__ import annotations

CONTAINER_KEYS_49 = frozenset(
    [
        "AddCapability",
        "AddDevice",
        "Annotation",
        "AutoUpdate",
        "ContainerName",
        "ContainersConfModule",
        "DNS",
        "DNSOption",
        "DNSSearch",
        "DropCapability",
        "Environment",
        "EnvironmentFile",
        "EnvironmentHost",
        "Exec",
        "ExposeHostPort",
        "GIDMap",
        "GlobalArgs",
        "Group",
        "HealthCmd",
        "HealthInterval",
        "HealthOnFailure",
        "HealthRetries",
        "HealthStartPeriod",
        "HealthStartupCmd",
        "HealthStartupInterval",
        "HealthStartupRetries",
        "HealthStartupSuccess",
        "HealthStartupTimeout",
        "HealthTimeout",
        "HostName",
        "Image",
        "IP",
        "IP6",
        "Label",
        "LogDriver",
        "Mask",
        "Mount",
        "Network",
        "NoNewPrivileges",
        "Notify",
        "PidsLimit",
        "PodmanArgs",
        "PublishPort",
        "Pull",
        "ReadOnly",
        "ReadOnlyTmpfs",
        "Rootfs",
        "RunInit",
        "SeccompProfile",
        "Secret",
        "SecurityLabelDisable",
        "SecurityLabelFileType",
        "SecurityLabelLevel",
        "SecurityLabelNested",
        "SecurityLabelType",
        "ShmSize",
        "SubGIDMap",
        "SubUIDMap",
        "Sysctl",
        "Timezone",
        "Tmpfs",
        "UIDMap",
        "Ulimit",
        "Unmask",
        "User",
        "UserNS",
        "Volume",
        "WorkingDir",
    ]
)


def sections(text: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            found.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        found.setdefault(current, []).append((key, value))
    return found


def problems_for_podman49(name: str, text: str) -> list[str]:
    """Why podman 4.9 would refuse this unit file; empty when it would not."""
    problems = []
    if "@" in name:
        problems.append("template units came in podman 5.0")
    parsed = sections(text)
    for key, value in parsed.get("Container", []):
        if key not in CONTAINER_KEYS_49:
            problems.append(f"[Container] {key}= is unknown to podman 4.9")
        if key == "Notify" and value not in ("true", "false", "yes", "no"):
            problems.append(f"Notify={value}: podman 4.9 takes only true or false")
    ulimits = [k for k, _ in parsed.get("Container", []) if k == "Ulimit"]
    if len(ulimits) > 1:
        problems.append("podman 4.9 honours only the last Ulimit= line")
    return problems
