import pytest

from hoist.engine.containers.schema import check_create_body
from hoist.errors import InvalidArgument


@pytest.mark.parametrize("body,field", [
    ({"Image": 123}, "Config.Image of type string"),
    ({"Cmd": 123}, "Config.Cmd of type strslice.StrSlice"),
    ({"Env": "A=1"}, "Config.Env of type []string"),
    ({"Env": ["A=1", 2]}, "Config.Env"),
    ({"Labels": ["a"]}, "Config.Labels of type map[string]string"),
    ({"Tty": "yes"}, "Config.Tty of type bool"),
    ({"HostConfig": {"Memory": "1g"}}, "HostConfig.Memory of type int64"),
    ({"HostConfig": {"Memory": 1.5}}, "HostConfig.Memory"),
    ({"HostConfig": {"BlkioWeight": -1}}, "HostConfig.BlkioWeight of type uint"),
    ({"HostConfig": {"Binds": "/a:/b"}}, "HostConfig.Binds"),
    ({"HostConfig": {"RestartPolicy": {"Name": 1}}}, "HostConfig.RestartPolicy.Name"),
    ({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": "1"}]}}, "HostConfig.Ulimits.Soft"),
    ({"HostConfig": {"Mounts": ["/a:/b"]}}, "HostConfig.Mounts of type object"),
    ({"Healthcheck": {"Test": "true"}}, "Config.Healthcheck.Test"),
])
def test_wrong_json_types_are_named(body, field):
    with pytest.raises(InvalidArgument, match="json: cannot unmarshal") as e:
        check_create_body(body)
    assert field in str(e.value)


def test_what_clients_send_passes():
    # docker 28 CLI and docker-py shapes: strings for StrSlice fields, nulls, floats that
    # are whole numbers, empty objects
    check_create_body({
        "Image": "busybox", "Cmd": "echo hi", "Entrypoint": None, "Env": None, "Labels": {},
        "Volumes": {}, "ExposedPorts": {}, "StopTimeout": None, "Healthcheck": {"Test": ["NONE"]},
        "HostConfig": {"Memory": 67108864.0, "CapAdd": "ALL", "ConsoleSize": [24, 80],
                       "Tmpfs": {"/run": ""}, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
                       "LogConfig": {"Type": "", "Config": {}}, "MemorySwappiness": None,
                       "Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/x", "ReadOnly": True}],
                       "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}]},
        "NetworkingConfig": {"EndpointsConfig": {}},
    })


def test_exec_bodies():
    from hoist.engine.containers.schema import check_exec_body
    check_exec_body({"Cmd": ["sh", "-c", "true"], "Env": None, "Tty": False, "ConsoleSize": [1, 2]})
    with pytest.raises(InvalidArgument, match="ExecConfig.Cmd"):
        check_exec_body({"Cmd": 5})
    with pytest.raises(InvalidArgument, match="ExecConfig.Env"):
        check_exec_body({"Cmd": ["true"], "Env": "A=1"})
